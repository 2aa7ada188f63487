import { type Balancer, safePick } from './balancer.js'
import type { RouteReason } from './classify-query.js'
import type { ReadRequirement } from './consistency-context.js'
import type { DatabaseNode } from './database-node.js'
import { NoReplicaAvailableError } from './errors.js'
import type { Lsn } from './lsn.js'
import type { ReplicaMonitor } from './replica-monitor.js'
import type { ReplicaState } from './replica-state.js'
import type { RouterMetrics } from './router-metrics.js'

/** Where one read goes, and why. */
export interface ReadTarget {
  readonly node: DatabaseNode
  readonly role: 'primary' | 'replica'
  readonly reason: RouteReason
  readonly replica: ReplicaState | undefined
  readonly waitedMs: number
}

export interface ReadTargetSettings {
  readonly whenNoReplica: 'primary' | 'error'
  readonly rywWaitMs: number
}

/**
 * Chooses the node for a read from replica health and the context's read-your-writes
 * requirement. Each replica is judged on its own replay position; only when none qualifies does
 * the read wait (within the budget) and then fall back to the primary.
 */
export class ReadTargetPicker {
  readonly #monitor: ReplicaMonitor
  readonly #balancer: Balancer
  readonly #metrics: RouterMetrics
  readonly #settings: ReadTargetSettings

  constructor(
    monitor: ReplicaMonitor,
    balancer: Balancer,
    metrics: RouterMetrics,
    settings: ReadTargetSettings,
  ) {
    this.#monitor = monitor
    this.#balancer = balancer
    this.#metrics = metrics
    this.#settings = settings
  }

  /** Synchronous unless the read has to wait for a replica: the common path adds no extra ticks. */
  pick(requirement: ReadRequirement, failed: ReadonlySet<ReplicaState>): ReadTarget | Promise<ReadTarget> {
    const all = this.#monitor.healthyReplicas()
    const healthy = failed.size === 0 ? all : all.filter((replica) => !failed.has(replica))
    if (healthy.length === 0) return this.#noReplica(failed)
    if (requirement.kind === 'none') return this.#replica(safePick(this.#balancer, healthy), 'read', 0)
    if (requirement.kind === 'invalid') return this.#primary('ryw-invalid-token', 0)
    const caughtUp = healthy.filter(
      (replica) => replica.replayLsn !== undefined && replica.replayLsn >= requirement.lsn,
    )
    if (caughtUp.length > 0) return this.#replica(safePick(this.#balancer, caughtUp), 'ryw-ok', 0)
    const budget = this.#settings.rywWaitMs
    if (budget > 0 && !this.#monitor.futileWait(requirement.lsn, budget, failed)) {
      return this.#waitForReplica(requirement.lsn, failed)
    }
    if (budget > 0) this.#metrics.rywWaitSkipped()
    return this.#primary('ryw-primary', 0)
  }

  #noReplica(failed: ReadonlySet<ReplicaState>): ReadTarget {
    const replicas = this.#monitor.replicas
    // A read whose replicas all failed under it is finished on the primary whatever the option:
    // the error option is about reads that find no replica to begin with.
    if (this.#settings.whenNoReplica === 'error' && failed.size === 0 && replicas.length > 0) {
      throw new NoReplicaAvailableError({
        replicas: replicas.length,
        excluded: replicas.map((r) => `${r.name}:${r.excludedFor ?? 'healthy'}`).join(','),
      })
    }
    const allLagging =
      failed.size === 0 && replicas.length > 0 && replicas.every((r) => r.excludedFor === 'lagging')
    return this.#primary(allLagging ? 'lagging' : 'no-replica', 0)
  }

  async #waitForReplica(lsn: Lsn, failed: ReadonlySet<ReplicaState>): Promise<ReadTarget> {
    const startedAt = performance.now()
    const replica = await this.#monitor.waitForLsn(lsn, this.#settings.rywWaitMs, failed)
    const waitedMs = performance.now() - startedAt
    this.#metrics.rywWaited(waitedMs, replica ? 'replica' : 'primary')
    if (replica) return this.#replica(replica, 'ryw-wait', waitedMs)
    return this.#primary('ryw-primary', waitedMs)
  }

  #replica(replica: ReplicaState, reason: RouteReason, waitedMs: number): ReadTarget {
    return { node: replica.node, role: 'replica', reason, replica, waitedMs }
  }

  #primary(reason: RouteReason, waitedMs: number): ReadTarget {
    return { node: this.#monitor.primary, role: 'primary', reason, replica: undefined, waitedMs }
  }
}
