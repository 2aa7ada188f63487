import type { Balancer } from './balancer.js'
import type { DatabaseNode } from './database-node.js'
import type { Lsn } from './lsn.js'
import { PrimaryDetector } from './primary-detector.js'
import { advanceReplay, isFutileWait } from './replay-estimates.js'
import { ReplayWaiters } from './replay-waiters.js'
import { REPLICA_CHECK, type ReplicaCheckRow, recordReplicaCheck } from './replica-check.js'
import { type ExclusionReason, ReplicaState } from './replica-state.js'
import type { RouterEventEmitter } from './router-events.js'

export interface MonitorSettings {
  intervalMs: number
  checkTimeoutMs: number
  maxLagSeconds: number
  maxLagBytes: number
  excludeAfterChecks: number
  rejoinAfterChecks: number
  rywPollIntervalMs: number
}

/**
 * Polls every replica (replay LSN, lag in bytes and seconds, latency, errors) and the primary
 * hosts, excludes replicas with hysteresis and re-detects the primary. All timers are unref'd:
 * a forgotten router never keeps the process alive.
 */
export class ReplicaMonitor {
  #replicas: readonly ReplicaState[] = []
  readonly #primaries: PrimaryDetector
  readonly #settings: MonitorSettings
  readonly #events: RouterEventEmitter
  #timer: NodeJS.Timeout | undefined
  #started = false
  #closed = false
  #tick: Promise<void> | undefined
  readonly #waiters: ReplayWaiters
  #healthy: readonly ReplicaState[] | undefined
  readonly #checking = new Set<ReplicaState>()

  constructor(
    primaries: readonly DatabaseNode[],
    replicas: readonly DatabaseNode[],
    settings: MonitorSettings,
    events: RouterEventEmitter,
    balancer: Balancer,
  ) {
    this.#primaries = new PrimaryDetector(primaries, settings.checkTimeoutMs, events)
    this.#settings = settings
    this.#events = events
    this.#waiters = new ReplayWaiters(balancer, {
      checkTimeoutMs: settings.checkTimeoutMs,
      rywPollIntervalMs: settings.rywPollIntervalMs,
      healthy: () => this.healthyReplicas(),
      advance: (replica, lsn) => advanceReplay(replica, lsn, this.#primaries.lsnHistory),
    })
    for (const node of replicas) this.#join(new ReplicaState(node))
    for (const node of primaries) node.watchPoolErrors(() => this.#requestPrimaryCheck())
  }

  /** The replicas, in configuration order (a new array whenever one is added or removed). */
  get replicas(): readonly ReplicaState[] {
    return this.#replicas
  }

  #join(replica: ReplicaState): void {
    // An idle client's error may be the server dying or just a killed session: check now
    // rather than exclude on hearsay. A failed query, by contrast, excludes at once.
    replica.node.watchPoolErrors(() => {
      if (this.#replicas.includes(replica)) this.#checkSoon(replica)
    })
    this.#replicas = [...this.#replicas, replica]
    this.#healthy = undefined
  }

  /**
   * Adds a replica at run time. It takes reads only after a first good check (with the monitor
   * not started yet, right away, like the configured ones).
   */
  async addReplica(node: DatabaseNode): Promise<ReplicaState> {
    const replica = new ReplicaState(node)
    if (this.#started && !this.#closed) {
      replica.status = 'excluded'
      replica.excludedFor = 'error'
      replica.consecutiveGood = this.#settings.rejoinAfterChecks - 1 // one good check rejoins it
      this.#join(replica)
      await this.#checkReplica(replica)
    } else {
      this.#join(replica)
    }
    return replica
  }

  /** Removes a replica: no new read goes to it; reads already running there finish. */
  removeReplica(replica: ReplicaState): void {
    this.#replicas = this.#replicas.filter((r) => r !== replica)
    this.#healthy = undefined
  }

  get primary(): DatabaseNode {
    return this.#primaries.primary
  }

  get primaryLsn(): Lsn | undefined {
    return this.#primaries.primaryLsn
  }

  /** Starts polling on first use; a no-op afterwards (called on every query). */
  ensureStarted(): void {
    if (!this.#started) void this.start().catch(() => {})
  }

  /** Starts polling (idempotent) and resolves after the first full check round. */
  start(): Promise<void> {
    if (!this.#started && !this.#closed) {
      this.#started = true
      this.#tick = this.#runTick()
    }
    return this.#tick ?? Promise.resolve()
  }

  async close(): Promise<void> {
    this.#closed = true
    if (this.#timer) clearTimeout(this.#timer)
    this.#waiters.close()
    await this.#tick?.catch(() => {})
  }

  /** The healthy replicas; a cached array rebuilt only when a status changes (hot path). */
  healthyReplicas(): readonly ReplicaState[] {
    this.#healthy ??= this.#replicas.filter((replica) => replica.status === 'healthy')
    return this.#healthy
  }

  /** The primary to write to (see {@link PrimaryDetector.current}). */
  currentPrimary(): Promise<DatabaseNode> {
    return this.#primaries.current()
  }

  /** Re-detects the primary host (see {@link PrimaryDetector.detect}). */
  detectPrimary(): Promise<DatabaseNode | undefined> {
    return this.#primaries.detect()
  }

  #checkSoon(replica: ReplicaState): void {
    if (this.#closed || !this.#started || this.#checking.has(replica)) return
    this.#checking.add(replica)
    void this.#checkReplica(replica)
      .catch(() => {})
      .finally(() => this.#checking.delete(replica))
  }

  /** A query failed on this replica because its connection or server died: exclude it now. */
  reportFailure(replica: ReplicaState, error: unknown): void {
    replica.errors++
    replica.lastError = error
    replica.consecutiveGood = 0
    replica.consecutiveBad++
    // After a crash the replica may restart from an older restart point: forget the position.
    replica.replayLsn = undefined
    this.#exclude(replica, 'error', error)
  }

  /** Something looked wrong on this replica (a read timed out): check it now rather than wait. */
  checkSoon(replica: ReplicaState): void {
    this.#checkSoon(replica)
  }

  /**
   * Resolves with a healthy replica whose replay position reached `lsn`, polling replay positions
   * quickly while anyone waits, or undefined after `budgetMs`.
   */
  waitForLsn(lsn: Lsn, budgetMs: number, skip: ReadonlySet<ReplicaState>): Promise<ReplicaState | undefined> {
    return this.#waiters.wait(lsn, budgetMs, skip)
  }

  /** The router's own write reached `lsn` just now (a precise point for lag and delay estimates). */
  noteWritePosition(lsn: Lsn): void {
    this.#primaries.noteWritePosition(lsn)
  }

  /**
   * True when waiting `budgetMs` for `lsn` is known to be futile: every candidate replica's
   * observed replay delay, minus how long ago the primary reached `lsn`, exceeds the budget. False
   * whenever something is unknown (then the read waits, as it always could).
   */
  futileWait(lsn: Lsn, budgetMs: number, skip: ReadonlySet<ReplicaState>): boolean {
    return isFutileWait(this.healthyReplicas(), lsn, budgetMs, skip, this.#primaries.lsnHistory)
  }

  #requestPrimaryCheck(): void {
    if (!this.#closed) void this.detectPrimary().catch(() => {})
  }

  async #runTick(): Promise<void> {
    if (this.#closed) return
    try {
      await this.#primaries.check()
      await Promise.all(this.#replicas.map((replica) => this.#checkReplica(replica)))
      this.#waiters.resolve()
    } catch {
      // Checks handle their own errors; anything else must not stop monitoring or surface as an
      // unhandled rejection from a timer callback.
    } finally {
      if (!this.#closed) {
        this.#timer = setTimeout(() => {
          this.#tick = this.#runTick()
        }, this.#settings.intervalMs)
        this.#timer.unref()
      }
    }
  }

  async #checkReplica(replica: ReplicaState): Promise<void> {
    const started = performance.now()
    let row: ReplicaCheckRow | undefined
    try {
      ;({
        rows: [row],
      } = await replica.node.queryWithin<ReplicaCheckRow>(
        REPLICA_CHECK,
        [],
        this.#settings.checkTimeoutMs,
        `check of ${replica.name}`,
      ))
    } catch (error) {
      this.reportFailure(replica, error)
      return
    }
    replica.latencyMs = performance.now() - started
    const verdict = recordReplicaCheck(replica, row, this.#primaries, this.#settings)
    if (verdict === 'rejoin') this.#rejoin(replica)
    else if (verdict !== undefined) this.#exclude(replica, verdict, undefined)
  }

  #rejoin(replica: ReplicaState): void {
    replica.status = 'healthy'
    this.#healthy = undefined
    replica.excludedFor = undefined
    replica.consecutiveBad = 0
    this.#events.emit('replica-rejoined', {
      node: replica.name,
      reason: 'healthy',
      lagBytes: replica.lagBytes,
      lagSeconds: replica.lagSeconds,
      error: undefined,
    })
  }

  #exclude(replica: ReplicaState, reason: ExclusionReason, error: unknown): void {
    replica.consecutiveGood = 0
    if (replica.status === 'excluded' && replica.excludedFor === reason) return
    const wasHealthy = replica.status === 'healthy'
    replica.status = 'excluded'
    this.#healthy = undefined
    replica.excludedFor = reason
    // A replica that failed (a check timed out, its server is gone) will not answer the reads
    // still running on it either: cut them off so they retry elsewhere now, whatever their deadline.
    if (reason === 'error') replica.node.abandonRunning()
    if (wasHealthy) {
      this.#events.emit('replica-excluded', {
        node: replica.name,
        reason,
        lagBytes: replica.lagBytes,
        lagSeconds: replica.lagSeconds,
        error,
      })
    }
  }
}
