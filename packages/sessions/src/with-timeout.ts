import { withCommandDeadline } from '@scale/ioredis-coalesce'
import { SessionStoreUnavailableError } from './errors.js'

/** Told each call's outcome (the circuit breaker), without a promise of its own. */
export interface CallObserver {
  succeeded(): void
  failed(error: unknown): void
}

/**
 * Runs one Redis call with a deadline (`withCommandDeadline` of @scale/ioredis-coalesce, shared
 * with @scale/read-through-cache): ioredis queues commands while it reconnects, so without a
 * deadline a request would hang for as long as Redis is down; with it the request fails fast and
 * the web server keeps serving. Every failure is a `SessionStoreUnavailableError`.
 */
export function withRedisDeadline<T>(
  operation: string,
  timeoutMs: number,
  call: () => Promise<T>,
  observer?: CallObserver,
): Promise<T> {
  return withCommandDeadline(call, timeoutMs, {
    timeoutError: (ms) => new SessionStoreUnavailableError(operation, new Error(`no answer within ${ms} ms`)),
    failed(error, timedOut) {
      observer?.failed(error)
      return timedOut ? error : new SessionStoreUnavailableError(operation, error)
    },
    succeeded() {
      observer?.succeeded()
    },
  })
}
