/** The pino-compatible subset this package logs through; `pino()` passes as is. */
export interface Logger {
  debug?(object: Record<string, unknown>, message: string): void
  info(object: Record<string, unknown>, message: string): void
  warn(object: Record<string, unknown>, message: string): void
  error(object: Record<string, unknown>, message: string): void
}

/** Metrics hook (Prometheus, StatsD, ...). Both methods optional; a hook that throws never breaks a call. */
export interface MetricsHook {
  increment?(name: string, labels?: Record<string, string>, value?: number): void
  observe?(name: string, value: number, labels?: Record<string, string>): void
}

const silent: Logger = { info() {}, warn() {}, error() {} }

/** @internal a logger and metrics hook behind one object that never throws into the caller. */
export class Observability {
  readonly logger: Logger
  readonly #metrics: MetricsHook | undefined
  #hookFailureLogged = false

  constructor(logger: Logger | undefined, metrics: MetricsHook | undefined) {
    this.logger = logger ?? silent
    this.#metrics = metrics
  }

  increment(name: string, labels?: Record<string, string>, value = 1): void {
    if (!this.#metrics?.increment) return
    try {
      this.#metrics.increment(name, labels, value)
    } catch (error) {
      this.#hookFailed(error)
    }
  }

  observe(name: string, value: number, labels?: Record<string, string>): void {
    if (!this.#metrics?.observe) return
    try {
      this.#metrics.observe(name, value, labels)
    } catch (error) {
      this.#hookFailed(error)
    }
  }

  #hookFailed(error: unknown): void {
    if (this.#hookFailureLogged) return
    this.#hookFailureLogged = true
    this.logger.warn({ err: error }, '[@scale/cdn-url] the metrics hook threw; ignored (logged once)')
  }
}
