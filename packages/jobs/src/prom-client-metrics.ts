import {
  type MetricCatalog,
  type MetricsHook,
  type PromClientLike,
  type PromClientMetricsOptions,
  promClientHook,
} from '@scale/observability'

export type { CounterLike, HistogramLike, PromClientMetricsOptions } from '@scale/observability'

/** The part of the prom-client module `promClientMetrics` uses: pass `import * as promClient from 'prom-client'`. */
export type PromClientCountersLike<Registry> = PromClientLike<Registry>

// What this package reports, with labels and help; a name not listed (a newer version's) gets the
// labels it first arrives with.
const CATALOG: MetricCatalog = {
  counters: {
    jobs_enqueued_total: { labelNames: ['queue', 'job'], help: 'Jobs enqueued by producers' },
    jobs_enqueue_errors_total: {
      labelNames: ['queue', 'job', 'code'],
      help: 'Enqueues that failed, by error code',
    },
    jobs_completed_total: { labelNames: ['queue', 'job'], help: 'Jobs completed' },
    jobs_retries_total: { labelNames: ['queue', 'job'], help: 'Failed attempts scheduled for a retry' },
    jobs_dead_lettered_total: {
      labelNames: ['queue', 'job', 'permanent'],
      help: 'Jobs that failed for good',
    },
    jobs_cancelled_total: { labelNames: ['queue', 'job'], help: 'Running jobs cancelled by producer.cancel' },
    jobs_returned_total: { labelNames: ['queue', 'job'], help: 'Jobs handed back to the queue at shutdown' },
    jobs_outbox_relayed_total: { labelNames: ['queue'], help: 'Outbox rows moved to BullMQ' },
    jobs_outbox_batch_errors_total: {
      labelNames: [],
      help: 'Outbox relay batches that failed (rows retried)',
    },
  },
  histograms: {
    jobs_run_seconds: { labelNames: ['queue'], help: 'Handler time of finished jobs' },
  },
}

/**
 * A `metrics` hook that feeds prom-client counters (and histograms for `observe`), created on
 * first use and registered where you say. Give the same hook to producers, workers and relays.
 *
 * @example
 * ```ts
 * import * as promClient from 'prom-client'
 * const metrics = promClientMetrics({ promClient })
 * createWorker({ connection, jobs: [resizeImage], metrics })
 * // GET /metrics → scale_jobs_completed_total{queue="images",job="resize-image"} 1234
 * ```
 */
export function promClientMetrics<Registry>(options: PromClientMetricsOptions<Registry>): MetricsHook {
  return promClientHook(options, CATALOG)
}
