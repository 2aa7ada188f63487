/** The pino-compatible logger subset: an object, then a message. `pino()` passes as is. */
export interface Logger {
  debug?(object: Record<string, unknown>, message: string): void
  info(object: Record<string, unknown>, message: string): void
  warn(object: Record<string, unknown>, message: string): void
  error(object: Record<string, unknown>, message: string): void
}

/** Counters and histograms; both methods optional. A hook that throws never breaks a call. */
export interface MetricsHook {
  increment?(name: string, labels?: Record<string, string>, value?: number): void
  observe?(name: string, value: number, labels?: Record<string, string>): void
}

const silent: Logger = { info() {}, warn() {}, error() {} }

/** Wraps the user's hooks: silent by default, a throwing metrics hook is logged once and ignored. */
export class Observability {
  readonly logger: Logger
  readonly #metrics: MetricsHook | undefined
  #hookFailed = false

  constructor(logger: Logger | undefined, metrics: MetricsHook | undefined) {
    this.logger = logger ?? silent
    this.#metrics = metrics
  }

  increment(name: string, labels?: Record<string, string>, value = 1): void {
    this.#safely(() => this.#metrics?.increment?.(name, labels, value))
  }

  observe(name: string, value: number, labels?: Record<string, string>): void {
    this.#safely(() => this.#metrics?.observe?.(name, value, labels))
  }

  #safely(call: () => void): void {
    try {
      call()
    } catch (error) {
      if (this.#hookFailed) return
      this.#hookFailed = true
      this.logger.warn({ err: error }, '[@scale/sharding] metrics hook threw; ignoring it (logged once)')
    }
  }
}
