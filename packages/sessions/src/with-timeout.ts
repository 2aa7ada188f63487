import { type DeadlineHandlers, withCommandDeadline } from '@scale/ioredis-coalesce'
import { SessionStoreUnavailableError } from './errors.js'

/** Told each call's outcome (the circuit breaker), without a promise of its own. */
export interface CallObserver {
  succeeded(): void
  failed(error: unknown): void
}

/**
 * What a deadline does with each outcome of one kind of call: every failure becomes a
 * `SessionStoreUnavailableError` naming the operation, and the observer hears of it. Made once
 * per operation and reused (see {@link RedisDeadlines}), not per call.
 */
function deadlineHandlers(operation: string, observer: CallObserver | undefined): DeadlineHandlers {
  return {
    timeoutError: (ms) => new SessionStoreUnavailableError(operation, new Error(`no answer within ${ms} ms`)),
    failed: (error, timedOut) => {
      observer?.failed(error)
      return timedOut ? error : new SessionStoreUnavailableError(operation, error)
    },
    succeeded: () => observer?.succeeded(),
  }
}

/**
 * Runs Redis calls with a deadline (`withCommandDeadline` of @scale/ioredis-coalesce, shared
 * with @scale/read-through-cache): ioredis queues commands while it reconnects, so without a
 * deadline a request would hang for as long as Redis is down; with it the request fails fast and
 * the web server keeps serving. Every failure is a `SessionStoreUnavailableError`.
 */
export class RedisDeadlines {
  readonly #timeoutMs: number
  readonly #observer: CallObserver | undefined
  /** Handlers by operation: a handful of operations, so a request allocates none. */
  readonly #handlers = new Map<string, DeadlineHandlers>()

  constructor(timeoutMs: number, observer?: CallObserver) {
    this.#timeoutMs = timeoutMs
    this.#observer = observer
  }

  run<T>(operation: string, call: () => Promise<T>): Promise<T> {
    let handlers = this.#handlers.get(operation)
    if (handlers === undefined) {
      handlers = deadlineHandlers(operation, this.#observer)
      this.#handlers.set(operation, handlers)
    }
    return withCommandDeadline(call, this.#timeoutMs, handlers)
  }
}
