import { SessionStoreUnavailableError } from './errors.js'

/**
 * Runs one Redis call with a deadline. ioredis queues commands while it reconnects (and retries
 * them up to `maxRetriesPerRequest` times), so without a deadline a request would hang for as
 * long as Redis is down; with it the request fails fast and the web server keeps serving.
 * One promise and one timer per call, no `Promise.race` or async wrapper: this runs on every
 * Redis call of every request, so its allocations show in the server's CPU per request.
 */
/** Told each call's outcome (the circuit breaker), without a promise of its own. */
export interface CallObserver {
  succeeded(): void
  failed(error: unknown): void
}

export function withRedisDeadline<T>(
  operation: string,
  timeoutMs: number,
  call: () => Promise<T>,
  observer?: CallObserver,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    // Only the first outcome counts: a reply arriving after the deadline settles an
    // already-rejected promise (a no-op, never an unhandled rejection) and tells the observer
    // nothing more.
    let settled = false
    const timer = setTimeout(() => {
      settled = true
      const error = new SessionStoreUnavailableError(operation, new Error(`no answer within ${timeoutMs} ms`))
      observer?.failed(error)
      reject(error)
    }, timeoutMs)
    let pending: Promise<T>
    try {
      pending = call()
    } catch (error) {
      pending = Promise.reject(error)
    }
    pending.then(
      (value) => {
        clearTimeout(timer)
        if (!settled) observer?.succeeded()
        settled = true
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        if (!settled) observer?.failed(error)
        settled = true
        reject(new SessionStoreUnavailableError(operation, error))
      },
    )
  })
}
