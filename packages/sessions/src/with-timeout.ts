import { SessionStoreUnavailableError } from './errors.js'

/**
 * Runs one Redis call with a deadline. ioredis queues commands while it reconnects (and retries
 * them up to `maxRetriesPerRequest` times), so without a deadline a request would hang for as
 * long as Redis is down; with it the request fails fast and the web server keeps serving.
 * One promise and one timer per call, no `Promise.race` or async wrapper: this runs on every
 * Redis call of every request, so its allocations show in the server's CPU per request.
 */
export function withRedisDeadline<T>(
  operation: string,
  timeoutMs: number,
  call: () => Promise<T>,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new SessionStoreUnavailableError(operation, new Error(`no answer within ${timeoutMs} ms`)))
    }, timeoutMs)
    // A reply arriving after the deadline settles an already-rejected promise: a no-op, and
    // never an unhandled rejection, because both outcomes of `call()` are handled here.
    let pending: Promise<T>
    try {
      pending = call()
    } catch (error) {
      pending = Promise.reject(error)
    }
    pending.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(new SessionStoreUnavailableError(operation, error))
      },
    )
  })
}
