import { type Logger, type MetricsHook, Observability } from '@scale/observability'

/**
 * The pino-compatible logger subset (`Logger`, `LogMethod`) and the metrics hook shared by @scale
 * packages. A hook that throws never breaks a query (the failure is logged once). Names and labels
 * the router reports:
 *
 * - `replica_queries_total` {node, role, reason, result: ok|error}: every routed query
 * - `replica_query_duration_ms` (observe) {role}: its duration, the read-your-writes wait included
 * - `replica_read_retries_total`: reads retried on another node after theirs failed
 * - `replica_ryw_waits_total` {result: replica|primary} and `replica_ryw_wait_ms` (observe): reads
 *   that waited for a replica to replay the context's position, and how long
 * - `replica_ryw_waits_skipped_total`: reads sent to the primary at once, the wait known futile
 * - `replica_health_changes_total` {node, event: excluded|rejoined, reason}, `replica_primary_changes_total`
 */
export type { Logger, LogMethod, MetricLabels, MetricsHook } from '@scale/observability'

/** @deprecated renamed `Logger` (one logger shape across @scale packages); removed in the next minor. */
export type RouterLogger = Logger

/** @internal the metrics hook behind one object that never throws into a query. */
export class MetricsSink extends Observability {
  constructor(hook: MetricsHook | undefined, logger: Logger | undefined) {
    super(logger, hook, '@scale/read-replica')
  }
}
