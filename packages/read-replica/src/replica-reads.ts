import type { CompiledQuery, QueryResult } from 'kysely'
import { isConnectionError, isPoolTimeout } from './connection-errors.js'
import type { ConsistencyContext, ReadRequirement } from './consistency-context.js'
import { ConnectFailedError } from './errors.js'
import { isAbandoned, type PgConnection } from './pg-connection.js'
import type { PrimaryExecutor } from './primary-executor.js'
import type { ReadTargetPicker } from './read-target.js'
import type { ReplicaMonitor } from './replica-monitor.js'
import type { ReplicaState } from './replica-state.js'
import type { RouteRecorder } from './route-recorder.js'

const NO_REQUIREMENT: ReadRequirement = { kind: 'none' }
const NONE_FAILED: ReadonlySet<ReplicaState> = new Set()

export interface ReplicaReadSettings {
  readonly readYourWrites: boolean
  readonly replicaReadTimeoutMs: number
}

/**
 * Runs a provably read-only query: on the replica the picker chooses (health, read-your-writes),
 * moving to another node when the replica, not the query, failed.
 */
export class ReplicaReads {
  readonly #monitor: ReplicaMonitor
  readonly #targets: ReadTargetPicker
  readonly #primary: PrimaryExecutor
  readonly #context: ConsistencyContext
  readonly #recorder: RouteRecorder
  readonly #settings: ReplicaReadSettings

  constructor(
    monitor: ReplicaMonitor,
    targets: ReadTargetPicker,
    primary: PrimaryExecutor,
    context: ConsistencyContext,
    recorder: RouteRecorder,
    settings: ReplicaReadSettings,
  ) {
    this.#monitor = monitor
    this.#targets = targets
    this.#primary = primary
    this.#context = context
    this.#recorder = recorder
    this.#settings = settings
  }

  async read<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const requirement = this.#settings.readYourWrites ? this.#context.requirement() : NO_REQUIREMENT
    let failed: Set<ReplicaState> | undefined
    for (let attempt = 1; ; attempt++) {
      const picked = this.#targets.pick(requirement, failed ?? NONE_FAILED)
      // Only a read-your-writes wait is asynchronous; the common path adds no extra ticks.
      const target = picked instanceof Promise ? await picked : picked
      const reason = attempt > 1 ? 'retry' : target.reason
      if (target.role === 'primary') {
        if (attempt > 1) this.#recorder.metrics.retried()
        return this.#primary.execute<R>(compiledQuery, reason, false, target.waitedMs)
      }
      const replica = target.replica as ReplicaState
      const startedAt = performance.now()
      let ok = false
      try {
        const result = await this.#runOn<R>(replica, compiledQuery)
        ok = true
        if (attempt > 1) this.#recorder.metrics.retried()
        return result
      } catch (error) {
        // Nothing was returned to the caller, so running the read elsewhere is safe when the
        // failure is the node's, not the query's. SQL errors are the caller's and are rethrown.
        if (!this.#replicaFailed(replica, error)) throw error
        failed ??= new Set()
        failed.add(replica)
      } finally {
        this.#recorder.record(
          replica.node,
          'replica',
          reason,
          compiledQuery,
          startedAt,
          target.waitedMs,
          attempt,
          ok,
        )
      }
    }
  }

  /**
   * Judges a failed replica read: true when the node (not the query) failed, so the read may
   * run elsewhere. Failing to connect at all (refused, wrong database, bad password) excludes
   * the replica at once; a pool that could not hand out a connection in time or a read past its
   * deadline may be load, not death, so the replica only gets an immediate check.
   */
  #replicaFailed(replica: ReplicaState, error: unknown): boolean {
    if (error instanceof ConnectFailedError) {
      if (isPoolTimeout(error.cause) || isAbandoned(error.cause)) this.#monitor.checkSoon(replica)
      else this.#monitor.reportFailure(replica, error.cause)
      return true
    }
    if (isAbandoned(error)) {
      if (error.abandoned === 'deadline') {
        replica.node.markUnresponsive()
        this.#monitor.checkSoon(replica)
      }
      return true
    }
    if (!isConnectionError(error)) return false
    this.#monitor.reportFailure(replica, error)
    return true
  }

  /**
   * Acquires, runs and releases on one replica, within `replicaReadTimeoutMs`. The read can be
   * cut off when the replica is excluded meanwhile (its connection is destroyed either way, so a
   * frozen replica never keeps pool connections).
   */
  async #runOn<R>(replica: ReplicaState, compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const node = replica.node
    let connection: PgConnection | undefined
    node.outstanding++
    try {
      connection = await node.acquire(true)
      connection.deadlineMs = this.#settings.replicaReadTimeoutMs
      node.startAbandonable(connection)
      return await connection.executeQuery<R>(compiledQuery)
    } finally {
      node.outstanding--
      if (connection) {
        node.endAbandonable(connection)
        connection.release()
      }
    }
  }
}
