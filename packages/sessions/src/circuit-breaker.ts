import { SessionStoreUnavailableError } from './errors.js'
import type { CallObserver } from './with-timeout.js'

/** Options of the Redis circuit breaker. */
export interface CircuitBreakerOptions {
  /** Consecutive failed Redis calls (timeouts, lost connections) that open the circuit. @default 5 */
  failureThreshold?: number
  /**
   * While open, at most one probe (a PING with the usual deadline) runs per interval; the first
   * that answers closes the circuit. @default 1_000
   */
  probeIntervalMs?: number
}

/**
 * Stops sending commands to a Redis that is known down, so an outage costs each request a fast
 * SessionStoreUnavailableError (then the `onRedisDown` policy) instead of the full
 * `commandTimeoutMs`. A request arriving once `probeIntervalMs` has passed starts a probe in the
 * background and still fails fast itself: no request ever waits on a probe. No timer runs
 * without traffic, so an idle process keeps nothing alive.
 *
 * Only outages count as failures: an error reply from Redis (a script error, WRONGTYPE) proves
 * Redis is up, so it is passed on without moving the breaker.
 */
export class CircuitBreaker implements CallObserver {
  readonly #threshold: number
  readonly #probeIntervalMs: number
  readonly #probe: () => Promise<unknown>
  readonly #onChange: (open: boolean, cause: unknown) => void
  #failures = 0
  #openedAt: number | undefined
  #lastProbeAt = 0
  #probing = false
  #stopped = false
  #lastCause: unknown

  constructor(
    options: Required<CircuitBreakerOptions>,
    probe: () => Promise<unknown>,
    onChange: (open: boolean, cause: unknown) => void,
  ) {
    this.#threshold = options.failureThreshold
    this.#probeIntervalMs = options.probeIntervalMs
    this.#probe = probe
    this.#onChange = onChange
  }

  get isOpen(): boolean {
    return this.#openedAt !== undefined
  }

  /** The error to fail with while the circuit is open (and starts a probe when one is due); undefined when closed. */
  rejection(operation: string): SessionStoreUnavailableError | undefined {
    if (this.#openedAt === undefined) return undefined
    this.#maybeProbe()
    return new SessionStoreUnavailableError(
      operation,
      new Error(
        `circuit open: ${this.#threshold} Redis calls in a row failed; failing fast until a probe answers`,
        { cause: this.#lastCause },
      ),
      { circuit: 'open' },
    )
  }

  /** No probe starts after this, and one in flight changes nothing (for `sessions.close()`). */
  stop(): void {
    this.#stopped = true
  }

  succeeded(): void {
    this.#failures = 0
  }

  failed(error: unknown): void {
    if (isOutage(error)) this.#recordFailure(error)
    else this.#failures = 0
  }

  #recordFailure(error: unknown): void {
    this.#lastCause = error
    this.#failures++
    if (this.#openedAt === undefined && this.#failures >= this.#threshold) {
      this.#openedAt = Date.now()
      this.#lastProbeAt = this.#openedAt
      this.#onChange(true, error)
    }
  }

  #maybeProbe(): void {
    const now = Date.now()
    if (this.#stopped || this.#probing || now - this.#lastProbeAt < this.#probeIntervalMs) return
    this.#probing = true
    this.#lastProbeAt = now
    this.#probe().then(
      () => {
        this.#probing = false
        if (this.#stopped) return
        this.#failures = 0
        this.#openedAt = undefined
        this.#onChange(false, undefined)
      },
      (error: unknown) => {
        this.#probing = false
        this.#lastCause = error
        this.#lastProbeAt = Date.now()
      },
    )
  }
}

/** A timeout or a lost connection, as opposed to an error reply from a Redis that is up. */
function isOutage(error: unknown): boolean {
  const cause = error instanceof SessionStoreUnavailableError ? error.cause : error
  return !(cause instanceof Error && cause.name === 'ReplyError')
}
