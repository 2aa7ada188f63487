export type CircuitState = 'closed' | 'open' | 'half-open'

export interface CircuitBreakerOptions {
  failureThreshold: number
  openDurationMs: number
  onStateChange?: (state: CircuitState) => void
}

/** What a caller may do right now. `probe` means: you are the one trial request of the half-open state. */
export type CircuitPermit = 'allow' | 'probe' | 'reject'

/**
 * Consecutive-failure breaker. Open: Redis is not called at all, so a dead Redis costs nothing
 * per request instead of a full command timeout. After `openDurationMs` exactly one request is let
 * through as a probe (half-open); its outcome closes or re-opens the circuit. No timer runs: the
 * transition to half-open happens lazily on the next request, so an idle cache holds nothing open.
 */
export class CircuitBreaker {
  readonly #options: CircuitBreakerOptions
  #state: CircuitState = 'closed'
  #failures = 0
  #openedAt = 0
  #opened = 0

  constructor(options: CircuitBreakerOptions) {
    this.#options = options
  }

  get state(): CircuitState {
    return this.#state
  }

  /** How many times the circuit has opened since creation. */
  get timesOpened(): number {
    return this.#opened
  }

  /**
   * `force`: the connection just came back (the client's 'ready'), which says more than the clock:
   * an open circuit lets its probe through at once instead of after `openDurationMs`.
   */
  permit(now: number, force = false): CircuitPermit {
    if (this.#state === 'closed') return 'allow'
    if (this.#state === 'open' && (force || now - this.#openedAt >= this.#options.openDurationMs)) {
      this.#set('half-open')
      return 'probe'
    }
    return 'reject'
  }

  /**
   * Only the probe may close an open circuit: a late answer to a command sent before the circuit
   * opened says little, and closing must wait for the probe's replay of queued invalidations.
   */
  success(probe: boolean): void {
    if (this.#state === 'closed') this.#failures = 0
    else if (probe) {
      this.#failures = 0
      this.#set('closed')
    }
  }

  failure(now: number, probe: boolean): void {
    this.#failures++
    if (this.#state === 'half-open' && !probe) return
    if (
      this.#state === 'half-open' ||
      (this.#state === 'closed' && this.#failures >= this.#options.failureThreshold)
    ) {
      this.#openedAt = now
      this.#opened++
      this.#set('open')
    }
  }

  #set(state: CircuitState): void {
    this.#state = state
    this.#options.onStateChange?.(state)
  }
}
