import {
  type MetricsHook,
  type PromClientLike,
  type PromClientMetricsOptions,
  promClientHook,
} from '@scale/observability'

export type { PromClientMetricsOptions, PromMetricConfiguration } from '@scale/observability'

/** The part of the prom-client module used: pass `import * as promClient from 'prom-client'`. */
export type PromClientModule<Registry> = PromClientLike<Registry>

/**
 * A `metrics` hook that feeds prom-client counters and histograms (milliseconds), registered once
 * when called (every metric the router reports, at zero, so /metrics lists them from the start):
 * create it once per registry.
 *
 * @example
 * ```ts
 * import * as promClient from 'prom-client'
 * const db = createReplicatedKysely<Database>({ primary, replicas, metrics: promClientMetrics({ promClient }) })
 * // GET /metrics -> scale_replica_queries_total{node="replica-1",role="replica",reason="read",result="ok"} 42
 * ```
 */
export function promClientMetrics<Registry>(options: PromClientMetricsOptions<Registry>): MetricsHook {
  return promClientHook(options, {
    declaredOnly: true,
    counters: {
      replica_queries_total: {
        help: 'Queries routed, by node, role, routing reason and result',
        labelNames: ['node', 'role', 'reason', 'result'],
      },
      replica_read_retries_total: {
        help: 'Reads retried on another node after theirs failed',
        labelNames: [],
      },
      replica_ryw_waits_total: {
        help: "Reads that waited for a replica to replay their context's position, by who served them",
        labelNames: ['result'],
      },
      replica_ryw_waits_skipped_total: {
        help: 'Reads sent to the primary at once, a read-your-writes wait known to be futile',
        labelNames: [],
      },
      replica_health_changes_total: {
        help: 'Replica exclusions and rejoins',
        labelNames: ['node', 'event', 'reason'],
      },
      replica_primary_changes_total: { help: 'Switches to another primary host', labelNames: [] },
    },
    histograms: {
      replica_query_duration_ms: { help: 'Query duration in milliseconds, by role', labelNames: ['role'] },
      replica_ryw_wait_ms: { help: 'Read-your-writes wait in milliseconds', labelNames: [] },
    },
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000],
  })
}
