import { type Logger, type MetricsHook, Observability as SharedObservability } from '@scale/observability'
import { SessionError } from './errors.js'

/** The logger and metrics hook shared by @scale packages (CONTRIBUTING.md). */
export type { Logger, MetricsHook } from '@scale/observability'

/**
 * What the package reports through {@link MetricsHook}:
 * - `sessions_loads_total` `{ result: 'found' | 'new' | 'unavailable' }`: a request's session was
 *   read from the store, started fresh (no, invalid or ended cookie), or the store was down.
 * - `sessions_saves_total` `{ kind: 'create' | 'update' }`: store writes at commit or save.
 * - `sessions_rotations_total`: a logged-in session moved to a new ID (regenerate).
 * - `sessions_revocations_total` `{ scope: 'one' | 'all' }` (value: sessions ended).
 * - `sessions_circuit_transitions_total` `{ state: 'open' | 'closed' }`, and
 *   `sessions_circuit_open` observed as 1 (open) or 0 (closed) at each transition.
 * - `sessions_errors_total` `{ code }`: errors thrown to the app or reported to `onError`.
 */
export type SessionsMetric =
  | 'sessions_loads_total'
  | 'sessions_saves_total'
  | 'sessions_rotations_total'
  | 'sessions_revocations_total'
  | 'sessions_circuit_transitions_total'
  | 'sessions_circuit_open'
  | 'sessions_errors_total'

/**
 * The user's logger, metrics hook and `onError` behind one object: silent by default; a hook or
 * an `onError` that throws is logged once and otherwise ignored, so reporting never fails a
 * request. The never-throwing hook wrapper is the shared one of `@scale/observability`.
 */
export class Observability {
  readonly logger: Logger
  readonly #metrics: SharedObservability
  readonly #onError: ((error: Error) => void) | undefined

  constructor(
    logger: Logger | undefined,
    metrics: MetricsHook | undefined,
    onError: ((error: Error) => void) | undefined,
  ) {
    this.#metrics = new SharedObservability(logger, metrics, '@scale/sessions')
    this.logger = this.#metrics.logger
    this.#onError = onError
  }

  increment(name: SessionsMetric, labels?: Record<string, string>, value = 1): void {
    try {
      this.#metrics.increment(name, labels, value)
    } catch {
      // Only a logger that threw while reporting a throwing hook gets here; nothing left to tell.
    }
  }

  observe(name: SessionsMetric, value: number, labels?: Record<string, string>): void {
    try {
      this.#metrics.observe(name, value, labels)
    } catch {
      // As above.
    }
  }

  /** Whether a metrics hook is set (so callers can skip work that only feeds it). */
  get counting(): boolean {
    return this.#metrics.enabled
  }

  /** Counts an error that reaches the app (thrown by load, commit, save, ...). */
  countError(error: unknown): void {
    if (!this.#metrics.enabled) return
    this.increment('sessions_errors_total', { code: error instanceof SessionError ? error.code : 'unknown' })
  }

  /**
   * A handled problem (a Redis outage under `'anonymous'`, a field that did not decrypt, a
   * cookie that could not be sent): counted, logged as a warning, and given to `onError`.
   */
  report(error: Error): void {
    this.countError(error)
    const code = error instanceof SessionError ? error.code : undefined
    try {
      this.logger.warn({ err: error, code }, error.message)
    } catch {
      // A throwing logger must not turn a handled problem into a failed request.
    }
    try {
      this.#onError?.(error)
    } catch {
      // Same for a throwing onError.
    }
  }
}
