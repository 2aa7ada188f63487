import type { DatabaseNode } from './database-node.js'
import type { Lsn } from './lsn.js'

export type ReplicaStatus = 'healthy' | 'excluded'
export type ExclusionReason = 'error' | 'lagging' | 'promoted'

/** What the monitor knows about one replica; read by the router and by `metrics()`. */
export class ReplicaState {
  readonly node: DatabaseNode
  status: ReplicaStatus = 'healthy'
  excludedFor: ExclusionReason | undefined
  /** lower bound of the replay position: replay only moves forward while the server keeps running */
  replayLsn: Lsn | undefined
  lagBytes: number | undefined
  lagSeconds: number | undefined
  latencyMs: number | undefined
  errors = 0
  lastError: unknown
  consecutiveBad = 0
  consecutiveGood = 0
  /** when its replay position was last observed (performance.now()) */
  observedAt: number | undefined
  /**
   * Smoothed lower bound of its replay delay (ms from the primary reaching a position to this
   * replica replaying it), from the primary positions it has been seen to replay.
   */
  replayDelayMs: number | undefined

  constructor(node: DatabaseNode) {
    this.node = node
  }

  get name(): string {
    return this.node.name
  }
  get weight(): number {
    return this.node.weight
  }
  get outstanding(): number {
    return this.node.outstanding
  }
  get healthy(): boolean {
    return this.status === 'healthy'
  }
}
