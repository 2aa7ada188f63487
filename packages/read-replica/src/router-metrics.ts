import type { RouteReason } from './classify-query.js'
import type { MetricsHook, MetricsSink } from './observability.js'

/** Counters per node and per reason; cheap integer increments on the hot path. */
export interface NodeCounters {
  queries: number
  errors: number
}

export interface RouterCounters {
  /** queries per node name */
  readonly byNode: Record<string, NodeCounters>
  /** queries per routing reason */
  readonly byReason: Partial<Record<RouteReason, number>>
  /** reads retried on another node after their node failed before returning a result */
  retries: number
  /** reads that waited for a replica to reach the context's position (served by a replica or not) */
  rywWaits: number
  /** total milliseconds spent in those waits */
  rywWaitMs: number
  /**
   * reads sent to the primary at once instead of waiting: every replica's observed replay delay
   * said it could not reach the position within `rywWaitMs`
   */
  rywWaitsSkipped: number
}

/**
 * Every routing decision counted twice: in the snapshot `router.metrics()` returns, and through
 * the user's `metrics` hook (names in {@link MetricsHook}).
 */
export class RouterMetrics {
  readonly #counters: RouterCounters = {
    byNode: {},
    byReason: {},
    retries: 0,
    rywWaits: 0,
    rywWaitMs: 0,
    rywWaitsSkipped: 0,
  }
  readonly sink: MetricsSink

  constructor(sink: MetricsSink) {
    this.sink = sink
  }

  /** One finished query; `durationMs` only when someone observes durations. */
  count(
    node: string,
    role: 'primary' | 'replica',
    reason: RouteReason,
    ok: boolean,
    durationMs: number | undefined,
  ): void {
    let perNode = this.#counters.byNode[node]
    if (!perNode) {
      perNode = { queries: 0, errors: 0 }
      this.#counters.byNode[node] = perNode
    }
    perNode.queries++
    if (!ok) perNode.errors++
    this.#counters.byReason[reason] = (this.#counters.byReason[reason] ?? 0) + 1
    this.sink.increment('replica_queries_total', { node, role, reason, result: ok ? 'ok' : 'error' })
    if (durationMs !== undefined) this.sink.observe('replica_query_duration_ms', durationMs, { role })
  }

  retried(): void {
    this.#counters.retries++
    this.sink.increment('replica_read_retries_total')
  }

  /** A read waited `waitedMs` for a replica to replay its context's position. */
  rywWaited(waitedMs: number, servedBy: 'replica' | 'primary'): void {
    this.#counters.rywWaits++
    this.#counters.rywWaitMs += waitedMs
    this.sink.increment('replica_ryw_waits_total', { result: servedBy })
    this.sink.observe('replica_ryw_wait_ms', waitedMs)
  }

  rywWaitSkipped(): void {
    this.#counters.rywWaitsSkipped++
    this.sink.increment('replica_ryw_waits_skipped_total')
  }

  snapshot(): RouterCounters {
    return structuredClone(this.#counters)
  }
}
