import { type Logger, type MetricsHook, Observability } from '@scale/observability'
import type { WorkerEvent } from './worker-options.js'

/*
 * The metrics hook (Prometheus, StatsD, OpenTelemetry...): both methods optional. A hook that throws
 * never breaks a call: the error is caught and logged once. `promClientMetrics` is one for
 * prom-client. Names this package reports (labels in braces):
 *
 * - `jobs_enqueued_total` {queue, job}; `jobs_enqueue_errors_total` {queue, job, code}
 * - `jobs_completed_total`, `jobs_retries_total`, `jobs_cancelled_total`, `jobs_returned_total` {queue, job}
 * - `jobs_dead_lettered_total` {queue, job, permanent}
 * - `jobs_run_seconds` (observe) {queue}: handler time of each finished job
 * - `jobs_outbox_relayed_total` {queue}; `jobs_outbox_batch_errors_total`
 */
export type { MetricsHook } from '@scale/observability'

/** @internal the metrics hook behind one object that never throws into the caller. */
export class Metrics extends Observability {
  constructor(hook: MetricsHook | undefined, logger: Logger) {
    super(logger, hook, '@scale/jobs')
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
