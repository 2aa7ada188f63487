import type { Balancer } from './balancer.js'
import type { DatabaseNode } from './database-node.js'
import { type Lsn, parseLsn } from './lsn.js'
import { PrimaryLsnHistory } from './primary-lsn-history.js'
import { ReplayWaiters } from './replay-waiters.js'
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

interface ReplicaRow {
  recovery: boolean
  replay: string | null
  caught_up: boolean | null
  since_replay: number | string | null
}

interface PrimaryRow {
  recovery: boolean
  lsn: string | null
}

// On the replica: replay position, and seconds since the last replayed commit counted only while
// received WAL is still waiting to be replayed (an idle primary must not look like lag).
const REPLICA_CHECK = `select pg_is_in_recovery() as recovery,
  pg_last_wal_replay_lsn()::text as replay,
  (pg_last_wal_receive_lsn() is not distinct from pg_last_wal_replay_lsn()) as caught_up,
  extract(epoch from (clock_timestamp() - pg_last_xact_replay_timestamp()))::float8 as since_replay`
const PRIMARY_CHECK = `select pg_is_in_recovery() as recovery,
  case when pg_is_in_recovery() then null else pg_current_wal_insert_lsn()::text end as lsn`

/**
 * Polls every replica (replay LSN, lag in bytes and seconds, latency, errors) and the primary
 * hosts, excludes replicas with hysteresis and re-detects the primary. All timers are unref'd:
 * a forgotten router never keeps the process alive.
 */
export class ReplicaMonitor {
  #replicas: readonly ReplicaState[] = []
  readonly #primaries: readonly DatabaseNode[]
  readonly #settings: MonitorSettings
  readonly #events: RouterEventEmitter
  #primaryIndex = 0
  #primaryConfirmed = false
  #primaryLsn: Lsn | undefined
  readonly #lsnHistory = new PrimaryLsnHistory()
  #detecting: Promise<DatabaseNode | undefined> | undefined
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
    this.#primaries = primaries
    this.#settings = settings
    this.#events = events
    this.#waiters = new ReplayWaiters(balancer, {
      checkTimeoutMs: settings.checkTimeoutMs,
      rywPollIntervalMs: settings.rywPollIntervalMs,
      healthy: () => this.healthyReplicas(),
      advance: (replica, lsn) => this.#advance(replica, lsn),
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
    return this.#primaries[this.#primaryIndex] as DatabaseNode
  }

  get primaryLsn(): Lsn | undefined {
    return this.#primaryLsn
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

  /** The primary to write to; the first call probes the configured hosts so a replica listed first is never written. */
  async currentPrimary(): Promise<DatabaseNode> {
    if (this.#primaryConfirmed || this.#primaries.length === 1) return this.primary
    return (await this.detectPrimary()) ?? this.primary
  }

  /**
   * Probes every configured primary host and switches to the first that is out of recovery
   * (the current one wins while it still is). Single-flight: concurrent callers share one probe.
   * Resolves undefined when no host accepts writes.
   */
  detectPrimary(): Promise<DatabaseNode | undefined> {
    this.#detecting ??= this.#probePrimaries().finally(() => {
      this.#detecting = undefined
    })
    return this.#detecting
  }

  async #probePrimaries(): Promise<DatabaseNode | undefined> {
    const results = await Promise.all(
      this.#primaries.map((node) =>
        node
          .queryWithin<PrimaryRow>(PRIMARY_CHECK, [], this.#settings.checkTimeoutMs, `probe of ${node.name}`)
          .then(
            ({ rows: [row] }) => row,
            () => undefined,
          ),
      ),
    )
    const writable = (index: number) => results[index] !== undefined && results[index]?.recovery === false
    let chosen = writable(this.#primaryIndex)
      ? this.#primaryIndex
      : results.findIndex((_, index) => writable(index))
    if (chosen < 0) {
      this.#primaryConfirmed = false
      return undefined
    }
    if (chosen !== this.#primaryIndex) {
      const from = this.primary.name
      this.#primaryIndex = chosen
      this.#events.emit('primary-changed', { from, to: this.primary.name })
    }
    chosen = this.#primaryIndex
    this.#primaryConfirmed = true
    this.#notePrimaryLsn(parseLsn(results[chosen]?.lsn))
    return this.primary
  }

  #notePrimaryLsn(lsn: Lsn | undefined): void {
    if (lsn === undefined) return
    this.#primaryLsn = lsn
    this.#lsnHistory.record(lsn, performance.now())
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

  #advance(replica: ReplicaState, lsn: Lsn | undefined): void {
    if (lsn === undefined) return
    const now = performance.now()
    const before = replica.replayLsn
    if (before === undefined || lsn > before) {
      // A primary position replayed since the last observation had not been replayed then: its
      // delay was at least (last observation - when the primary was seen there).
      const firstSeen = this.#lsnHistory.firstSeenBetween(before, lsn)
      if (before !== undefined && firstSeen !== undefined && replica.observedAt !== undefined) {
        const atLeast = Math.max(0, replica.observedAt - firstSeen)
        replica.replayDelayMs =
          replica.replayDelayMs === undefined ? atLeast : replica.replayDelayMs * 0.7 + atLeast * 0.3
      }
      replica.replayLsn = lsn
    }
    replica.observedAt = now
  }

  /** The router's own write reached `lsn` just now (a precise point for lag and delay estimates). */
  noteWritePosition(lsn: Lsn): void {
    if (this.#primaryLsn === undefined || lsn > this.#primaryLsn) this.#primaryLsn = lsn
    this.#lsnHistory.record(lsn, performance.now())
  }

  /**
   * True when waiting `budgetMs` for `lsn` is known to be futile: every candidate replica's
   * observed replay delay, minus how long ago the primary reached `lsn`, exceeds the budget. False
   * whenever something is unknown (then the read waits, as it always could).
   */
  futileWait(lsn: Lsn, budgetMs: number, skip: ReadonlySet<ReplicaState>): boolean {
    const age = this.#lsnHistory.ageAtMost(lsn, performance.now())
    if (age === undefined) return false
    let soonest = Number.POSITIVE_INFINITY
    for (const replica of this.healthyReplicas()) {
      if (skip.has(replica)) continue
      if (replica.replayDelayMs === undefined) return false
      soonest = Math.min(soonest, replica.replayDelayMs - age)
    }
    return soonest > budgetMs
  }

  #requestPrimaryCheck(): void {
    if (!this.#closed) void this.detectPrimary().catch(() => {})
  }

  async #runTick(): Promise<void> {
    if (this.#closed) return
    try {
      await this.#checkPrimary()
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

  async #checkPrimary(): Promise<void> {
    try {
      const {
        rows: [row],
      } = await this.primary.queryWithin<PrimaryRow>(
        PRIMARY_CHECK,
        [],
        this.#settings.checkTimeoutMs,
        `check of ${this.primary.name}`,
      )
      if (row?.recovery === false) {
        this.#primaryConfirmed = true
        this.#notePrimaryLsn(parseLsn(row.lsn))
        return
      }
    } catch {
      // fall through to detection
    }
    await this.detectPrimary()
  }

  async #checkReplica(replica: ReplicaState): Promise<void> {
    const started = performance.now()
    let row: ReplicaRow | undefined
    try {
      ;({
        rows: [row],
      } = await replica.node.queryWithin<ReplicaRow>(
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
    if (row?.recovery !== true) {
      // A promoted replica is a primary of its own timeline: reading it risks split-brain data.
      replica.consecutiveGood = 0
      replica.replayLsn = undefined
      this.#exclude(replica, 'promoted', undefined)
      return
    }
    const replay = parseLsn(row.replay)
    if (replay !== undefined && replica.replayLsn !== undefined && replay < replica.replayLsn) {
      // Went backwards: the server restarted from an older point. Trust only the new value.
      replica.replayLsn = replay
    } else {
      this.#advance(replica, replay)
    }
    replica.lagSeconds = this.#lagSeconds(row, replay)
    replica.lagBytes =
      this.#primaryLsn !== undefined && replay !== undefined
        ? Math.max(0, Number(this.#primaryLsn - replay))
        : undefined
    const { maxLagSeconds, maxLagBytes } = this.#settings
    const lagging = replica.lagSeconds > maxLagSeconds || (replica.lagBytes ?? 0) > maxLagBytes
    // Hysteresis: rejoining needs the lag well under the limit, not just under it, so a replica
    // hovering around maxLag does not flap in and out.
    const comfortable = replica.lagSeconds <= maxLagSeconds / 2 && (replica.lagBytes ?? 0) <= maxLagBytes / 2
    if (replica.status === 'healthy') {
      replica.consecutiveBad = lagging ? replica.consecutiveBad + 1 : 0
      if (replica.consecutiveBad >= this.#settings.excludeAfterChecks)
        this.#exclude(replica, 'lagging', undefined)
      return
    }
    replica.consecutiveGood = comfortable ? replica.consecutiveGood + 1 : 0
    if (replica.consecutiveGood >= this.#settings.rejoinAfterChecks) {
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
  }

  // Seconds during which the primary had WAL this replica has not replayed (see
  // PrimaryLsnHistory). Before the primary's position is known, the server's own view: time since
  // the last replayed commit, counted only while received WAL waits to be replayed.
  #lagSeconds(row: ReplicaRow, replay: Lsn | undefined): number {
    const known = replay === undefined ? undefined : this.#lsnHistory.secondsBehind(replay, performance.now())
    if (known !== undefined) return known
    if (row.caught_up === true || row.since_replay === null) return 0
    return Math.max(0, Number(row.since_replay))
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
