import type { CompiledQuery } from 'kysely'
import type { RouteReason } from './classify-query.js'
import type { DatabaseNode } from './database-node.js'
import type { RouterEventEmitter } from './router-events.js'
import type { RouterMetrics } from './router-metrics.js'

/** Counts every finished query per node and reason, and emits its `route` event when anyone listens. */
export class RouteRecorder {
  readonly metrics: RouterMetrics
  readonly #events: RouterEventEmitter

  constructor(metrics: RouterMetrics, events: RouterEventEmitter) {
    this.metrics = metrics
    this.#events = events
  }

  record(
    node: DatabaseNode,
    role: 'primary' | 'replica',
    reason: RouteReason,
    query: CompiledQuery,
    startedAt: number,
    waitedMs: number,
    attempt: number,
    ok: boolean,
  ): void {
    const listening = this.#events.has('route')
    const durationMs = listening || this.metrics.sink.observes ? performance.now() - startedAt : undefined
    this.metrics.count(node.name, role, reason, ok, durationMs)
    if (listening) {
      this.#events.emit('route', {
        node: node.name,
        role,
        reason,
        queryKind: query.query.kind,
        durationMs: durationMs as number,
        waitedMs,
        attempt,
        ok,
      })
    }
  }
}
