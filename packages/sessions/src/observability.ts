import { SessionError } from './errors.js'

/** The pino-compatible logger subset: an object, then a message. `pino()` passes as is. */
export interface Logger {
  debug?(object: Record<string, unknown>, message: string): void
  info(object: Record<string, unknown>, message: string): void
  warn(object: Record<string, unknown>, message: string): void
  error(object: Record<string, unknown>, message: string): void
}

/**
 * Counters and histograms; both methods optional. A hook that throws never breaks a request
 * (caught, and logged once). The names this package reports are listed in {@link SessionsMetric}.
 */
export interface MetricsHook {
  increment?(name: string, labels?: Record<string, string>, value?: number): void
  observe?(name: string, value: number, labels?: Record<string, string>): void
}

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

const silent: Logger = { info() {}, warn() {}, error() {} }

/**
 * The user's logger, metrics hook and `onError` behind one object: silent by default; a hook or
 * an `onError` that throws is logged once and otherwise ignored, so reporting never fails a
 * request.
 */
export class Observability {
  readonly logger: Logger
  readonly #metrics: MetricsHook | undefined
  readonly #onError: ((error: Error) => void) | undefined
  #metricsFailed = false

  constructor(
    logger: Logger | undefined,
    metrics: MetricsHook | undefined,
    onError: ((error: Error) => void) | undefined,
  ) {
    this.logger = logger ?? silent
    this.#metrics = metrics
    this.#onError = onError
  }

  increment(name: SessionsMetric, labels?: Record<string, string>, value = 1): void {
    const metrics = this.#metrics
    if (metrics?.increment === undefined) return
    try {
      metrics.increment(name, labels, value)
    } catch (error) {
      this.#metricsThrew(error)
    }
  }

  observe(name: SessionsMetric, value: number, labels?: Record<string, string>): void {
    const metrics = this.#metrics
    if (metrics?.observe === undefined) return
    try {
      metrics.observe(name, value, labels)
    } catch (error) {
      this.#metricsThrew(error)
    }
  }

  /** Whether a metrics hook is set (so callers can skip work that only feeds it). */
  get counting(): boolean {
    return this.#metrics !== undefined
  }

  /** Counts an error that reaches the app (thrown by load, commit, save, ...). */
  countError(error: unknown): void {
    if (this.#metrics === undefined) return
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

  #metricsThrew(error: unknown): void {
    if (this.#metricsFailed) return
    this.#metricsFailed = true
    try {
      this.logger.warn({ err: error }, '[@scale/sessions] the metrics hook threw; ignoring it (logged once)')
    } catch {
      // Nothing left to report to.
    }
  }
}
