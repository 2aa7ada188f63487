import type { RouteReason } from './classify-query.js'

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

export class RouterMetrics {
  readonly counters: RouterCounters = {
    byNode: {},
    byReason: {},
    retries: 0,
    rywWaits: 0,
    rywWaitMs: 0,
    rywWaitsSkipped: 0,
  }

  count(node: string, reason: RouteReason, ok: boolean): void {
    let perNode = this.counters.byNode[node]
    if (!perNode) {
      perNode = { queries: 0, errors: 0 }
      this.counters.byNode[node] = perNode
    }
    perNode.queries++
    if (!ok) perNode.errors++
    this.counters.byReason[reason] = (this.counters.byReason[reason] ?? 0) + 1
  }

  snapshot(): RouterCounters {
    return structuredClone(this.counters)
  }
}
