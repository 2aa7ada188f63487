import type { Logger } from './logger.js'
import type { WorkerEvent } from './worker-options.js'

/**
 * A metrics hook (Prometheus, StatsD, OpenTelemetry...): both methods optional. A hook that throws
 * never breaks a call: the error is caught and logged once. `promClientMetrics` is one for
 * prom-client. Names this package reports (labels in braces):
 *
 * - `jobs_enqueued_total` {queue, job}; `jobs_enqueue_errors_total` {queue, job, code}
 * - `jobs_completed_total`, `jobs_retries_total`, `jobs_cancelled_total`, `jobs_returned_total` {queue, job}
 * - `jobs_dead_lettered_total` {queue, job, permanent}
 * - `jobs_run_seconds` (observe) {queue}: handler time of each finished job
 * - `jobs_outbox_relayed_total` {queue}; `jobs_outbox_batch_errors_total`
 */
export interface MetricsHook {
  increment?(name: string, labels?: Record<string, string>, value?: number): void
  observe?(name: string, value: number, labels?: Record<string, string>): void
}

/** @internal a metrics hook behind one object that never throws into the caller. */
export class Metrics {
  readonly #hook: MetricsHook | undefined
  readonly #logger: Logger
  #failureLogged = false

  constructor(hook: MetricsHook | undefined, logger: Logger) {
    this.#hook = hook
    this.#logger = logger
  }

  /** Whether a hook listens (lets a hot path skip building labels). */
  get enabled(): boolean {
    return this.#hook !== undefined
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
    this.#logger.warn({ err: error }, '[@scale/jobs] the metrics hook threw; ignored (logged once)')
  }
}

/** The counter each worker event adds to (`shutdown` adds to none). */
const EVENT_COUNTERS = {
  completed: 'jobs_completed_total',
  'retry-scheduled': 'jobs_retries_total',
  'dead-lettered': 'jobs_dead_lettered_total',
  cancelled: 'jobs_cancelled_total',
  returned: 'jobs_returned_total',
} as const

/** @internal counts a worker event on the hook. */
export function countEvent(metrics: Metrics, event: WorkerEvent): void {
  if (event.type === 'shutdown') return
  const labels: Record<string, string> = { queue: event.queue, job: event.name }
  if (event.type === 'dead-lettered') labels.permanent = String(event.permanent)
  metrics.increment(EVENT_COUNTERS[event.type], labels)
}
