import { deadlineQueue } from './deadline-queue.js'

/**
 * What {@link withCommandDeadline} does with each outcome. Only the first outcome counts: a reply
 * that arrives after the deadline is dropped (never an unhandled rejection) and reported to nobody.
 */
export interface DeadlineHandlers {
  /** The error for "no reply within the deadline"; passed to `failed` with `timedOut: true`. */
  timeoutError(timeoutMs: number): unknown
  /**
   * Told the first failure: the timeout error or the command's own rejection. Returns the error
   * the call rejects with (wrap the driver's error here). Default: rejects with `error` as is.
   */
  failed?(error: unknown, timedOut: boolean): unknown
  /** Told a reply within the deadline (e.g. a circuit breaker's success). */
  succeeded?(): void
}

/**
 * Runs one Redis command with a deadline. ioredis queues commands while it reconnects (and retries
 * them up to `maxRetriesPerRequest` times), so without a deadline a call waits for as long as
 * Redis is down; with it the caller fails fast and can serve something else.
 *
 * One promise and one queue entry per call, no timer of its own (the calls with one timeout share
 * one, see `deadline-queue.ts`), no `Promise.race` or async wrapper: this runs on every Redis
 * command of every request, so its allocations show in a server's CPU per request. A command that
 * throws synchronously counts as a rejection.
 *
 * @example
 * ```ts
 * const value = await withCommandDeadline(() => redis.get('k'), 200, {
 *   timeoutError: (ms) => new Error(`no reply within ${ms} ms`),
 * })
 * ```
 */
export function withCommandDeadline<T>(
  command: () => Promise<T>,
  timeoutMs: number,
  handlers: DeadlineHandlers,
): Promise<T> {
  const queue = deadlineQueue(timeoutMs)
  return new Promise<T>((resolve, reject) => {
    const deadline = queue.add(() => {
      const error = handlers.timeoutError(timeoutMs)
      reject(handlers.failed === undefined ? error : handlers.failed(error, true))
    })
    let pending: Promise<T>
    try {
      pending = command()
    } catch (error) {
      pending = Promise.reject(error)
    }
    pending.then(
      (value) => {
        if (deadline.done) return
        queue.settle(deadline)
        handlers.succeeded?.()
        resolve(value)
      },
      (error: unknown) => {
        if (deadline.done) return
        queue.settle(deadline)
        reject(handlers.failed === undefined ? error : handlers.failed(error, false))
      },
    )
  })
}
