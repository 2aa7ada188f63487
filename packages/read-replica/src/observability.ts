/**
 * The pino-compatible logger subset this package logs through (an object, then a message);
 * `pino()` passes as is. Silent by default.
 */
export interface Logger {
  debug?: LogMethod
  info: LogMethod
  warn: LogMethod
  error: LogMethod
}

/** One level of a {@link Logger}: an object of fields, then a message (pino's argument order). */
export type LogMethod = (object: Record<string, unknown>, message: string) => void

/** @deprecated renamed `Logger` (one logger shape across @scale packages); removed in the next minor. */
export type RouterLogger = Logger

/**
 * Metrics hook (Prometheus, StatsD, OpenTelemetry, …). Both methods optional; a hook that throws
 * never breaks a query (the failure is logged once). Names and labels the router reports:
 *
 * - `replica_queries_total` {node, role, reason, result: ok|error}: every routed query
 * - `replica_query_duration_ms` (observe) {role}: its duration, the read-your-writes wait included
 * - `replica_read_retries_total`: reads retried on another node after theirs failed
 * - `replica_ryw_waits_total` {result: replica|primary} and `replica_ryw_wait_ms` (observe): reads
 *   that waited for a replica to replay the context's position, and how long
 * - `replica_ryw_waits_skipped_total`: reads sent to the primary at once, the wait known futile
 * - `replica_health_changes_total` {node, event: excluded|rejoined, reason}, `replica_primary_changes_total`
 */
export interface MetricsHook {
  /** adds `value` (default 1) to the counter `name` */
  increment?: (name: string, labels?: MetricLabels, value?: number) => void
  /** records one observation (a duration in milliseconds) of the histogram `name` */
  observe?: (name: string, value: number, labels?: MetricLabels) => void
}

/** Label values of one metric sample. */
export type MetricLabels = Record<string, string>

/** @internal the metrics hook behind one object that never throws into a query. */
export class MetricsSink {
  readonly #hook: MetricsHook | undefined
  readonly #logger: Logger | undefined
  #failureLogged = false

  constructor(hook: MetricsHook | undefined, logger: Logger | undefined) {
    this.#hook = hook
    this.#logger = logger
  }

  /** False when nobody observes durations: the hot path then measures nothing. */
  get observes(): boolean {
    return typeof this.#hook?.observe === 'function'
  }

  increment(name: string, labels?: Record<string, string>, value = 1): void {
    if (!this.#hook?.increment) return
    try {
      this.#hook.increment(name, labels, value)
    } catch (error) {
      this.#failed(error)
    }
  }

  observe(name: string, value: number, labels?: Record<string, string>): void {
    if (!this.#hook?.observe) return
    try {
      this.#hook.observe(name, value, labels)
    } catch (error) {
      this.#failed(error)
    }
  }

  #failed(error: unknown): void {
    if (this.#failureLogged) return
    this.#failureLogged = true
    this.#logger?.warn({ err: error }, '[@scale/read-replica] the metrics hook threw; ignored (logged once)')
  }
}
