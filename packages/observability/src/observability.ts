import { type Logger, silentLogger } from './logger.js'

/** Label values of one metric sample. */
export type MetricLabels = Record<string, string>

/**
 * Metrics hook (Prometheus, StatsD, OpenTelemetry, ...). Both methods optional; a hook that throws
 * never breaks a call (see {@link Observability}).
 */
export interface MetricsHook {
  /** adds `value` (default 1) to the counter `name` */
  increment?(name: string, labels?: MetricLabels, value?: number): void
  /** records one observation of the histogram `name` */
  observe?(name: string, value: number, labels?: MetricLabels): void
}

/**
 * The user's logger and metrics hook behind one object that never throws into the caller: silent
 * without a logger; a hook that throws is logged once (as `[source] the metrics hook threw`) and
 * ignored, since a broken dashboard must not break a query or a job.
 */
export class Observability {
  readonly logger: Logger
  readonly #hook: MetricsHook | undefined
  readonly #source: string
  #failureLogged = false

  /** `source` names the package in the log line, e.g. `'@scale/jobs'`. */
  constructor(logger: Logger | undefined, hook: MetricsHook | undefined, source: string) {
    this.logger = logger ?? silentLogger
    this.#hook = hook
    this.#source = source
  }

  /** Whether a hook listens (lets a hot path skip building labels). */
  get enabled(): boolean {
    return this.#hook !== undefined
  }

  /** Whether anybody observes histograms (lets a hot path skip measuring durations). */
  get observes(): boolean {
    return typeof this.#hook?.observe === 'function'
  }

  increment(name: string, labels?: MetricLabels, value = 1): void {
    if (!this.#hook?.increment) return
    try {
      this.#hook.increment(name, labels, value)
    } catch (error) {
      this.#failed(error)
    }
  }

  observe(name: string, value: number, labels?: MetricLabels): void {
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
    this.logger.warn({ err: error }, `[${this.#source}] the metrics hook threw; ignored (logged once)`)
  }
}
