import { AsyncLocalStorage } from 'node:async_hooks'
import { CompiledQuery, type DatabaseConnection, type QueryResult, type TransactionSettings } from 'kysely'
import { type Balancer, createBalancer } from './balancer.js'
import { QueryClassifier, type RouteReason } from './classify-query.js'
import { isConnectionError, isPoolTimeout, isReadOnlyError } from './connection-errors.js'
import { ConsistencyContext, type ReadRequirement } from './consistency-context.js'
import { ConsistencyTokenCodec } from './consistency-token.js'
import { ConnectFailure, DatabaseNode, type NodeInput, type PoolLike } from './database-node.js'
import {
  PrimaryConnectionLostError,
  PrimaryReadOnlyError,
  PrimaryUnreachableError,
  QueryTimeoutError,
  ReadReplicaError,
  RouterClosedError,
  TransactionRolledBackError,
  WritesPreventedError,
} from './errors.js'
import { FunctionCatalog, mayChangeFunctions } from './function-catalog.js'
import { formatLsn, type Lsn, parseLsn } from './lsn.js'
import type { ResolvedOptions } from './options.js'
import { isAbandoned, type PgConnection } from './pg-connection.js'
import { PinnedConnection } from './pinned-connection.js'
import { ReadTargetPicker } from './read-target.js'
import { ReplicaMembership } from './replica-membership.js'
import { ReplicaMonitor, type ReplicaState } from './replica-monitor.js'
import { logRouterEvents, RouterEventEmitter, type RouterEvents } from './router-events.js'
import { type RouterCounters, RouterMetrics } from './router-metrics.js'
import {
  beginStatement,
  COMMIT,
  ROLLBACK,
  type SavepointAction,
  savepointStatement,
} from './transaction-statements.js'

/**
 * How an executor routes: by query (`auto`), or forced by `db.primary()` / `db.replica()`;
 * `replica-only` is `db.replica({ preventWrites: true })`: a query that is not provably
 * read-only throws instead of going to the primary.
 */
export type RoutingMode = 'auto' | 'primary' | 'replica' | 'replica-only'

/** Health and position of one replica, as reported by `router.metrics()`. */
export interface ReplicaSnapshot {
  readonly name: string
  readonly status: 'healthy' | 'excluded'
  readonly excludedFor: 'error' | 'lagging' | 'promoted' | undefined
  readonly replayLsn: string | undefined
  readonly lagBytes: number | undefined
  readonly lagSeconds: number | undefined
  readonly latencyMs: number | undefined
  readonly errors: number
  readonly outstanding: number
}

export interface RouterSnapshot extends RouterCounters {
  readonly primary: string
  readonly primaryLsn: string | undefined
  readonly replicas: readonly ReplicaSnapshot[]
}

// Read after COMMIT, in its own statement: inside the writing statement the commit record does
// not exist yet. The insert position (not the write position) is used because with
// synchronous_commit = off the write position may still be behind the commit record.
const CURRENT_LSN = CompiledQuery.raw('select pg_current_wal_insert_lsn()::text as lsn')

/**
 * Routes every query of a replicated Kysely instance, tracks read-your-writes positions and
 * owns the replica monitor. Reach it as `db.router`.
 */
export class ReplicaRouter {
  readonly #options: ResolvedOptions
  readonly #primaries: readonly DatabaseNode[]
  readonly #membership: ReplicaMembership
  readonly #monitor: ReplicaMonitor
  readonly #balancer: Balancer
  readonly #events = new RouterEventEmitter()
  readonly #metrics = new RouterMetrics()
  readonly #context: ConsistencyContext
  readonly #codec: ConsistencyTokenCodec
  readonly #readTargets: ReadTargetPicker
  readonly #catalog: FunctionCatalog
  readonly #classifier: QueryClassifier
  /** what `usePrimary()` / `preventWrites()` set for the code they run */
  readonly #scope = new AsyncLocalStorage<'primary' | 'prevent-writes'>()
  #closed = false

  constructor(options: ResolvedOptions) {
    this.#options = options
    this.#primaries = options.primaries.map(
      (input, index) =>
        new DatabaseNode(
          input,
          index === 0 ? 'primary' : `primary-${index + 1}`,
          options.cursor,
          options.connectTimeoutMs,
        ),
    )
    const replicaNodes = options.replicas.map(
      (input, index) =>
        new DatabaseNode(input, `replica-${index + 1}`, options.cursor, options.connectTimeoutMs),
    )
    this.#balancer = createBalancer(options.balance)
    this.#monitor = new ReplicaMonitor(
      this.#primaries,
      replicaNodes,
      {
        intervalMs: options.monitorIntervalMs,
        checkTimeoutMs: options.checkTimeoutMs,
        maxLagSeconds: options.maxLagSeconds,
        maxLagBytes: options.maxLagBytes,
        excludeAfterChecks: options.excludeAfterChecks,
        rejoinAfterChecks: options.rejoinAfterChecks,
        rywPollIntervalMs: options.rywPollIntervalMs,
      },
      this.#events,
      this.#balancer,
    )
    this.#membership = new ReplicaMembership(this.#monitor, options)
    if (options.discoverReplicas) {
      this.#membership.startDiscovery(options.discoverReplicas, options.discoverIntervalMs)
    }
    this.#catalog = new FunctionCatalog(options, {
      node: () => this.#monitor.currentPrimary(),
      timeoutMs: options.checkTimeoutMs,
      retryMs: options.monitorIntervalMs,
    })
    this.#classifier = new QueryClassifier(this.#catalog)
    this.#context = new ConsistencyContext(options.outsideContext === 'process')
    if (options.logger) logRouterEvents(this.#events, options.logger)
    this.#codec = new ConsistencyTokenCodec(options.tokenSecret)
    this.#readTargets = new ReadTargetPicker(this.#monitor, this.#balancer, this.#metrics, {
      whenNoReplica: options.whenNoReplica,
      rywWaitMs: options.rywWaitMs,
    })
  }

  /**
   * Starts the monitor (it also starts on the first query) and resolves after its first check
   * of every node, so routing decisions start from known health and positions.
   */
  async ready(): Promise<void> {
    await Promise.all([this.#monitor.start(), this.#closed ? undefined : this.#catalog.load()])
  }

  /**
   * Reloads which functions are read-only from the primary's `pg_proc`. The router does this by
   * itself after function DDL it runs; call it after functions changed elsewhere (a migration
   * run by another process).
   */
  async reloadFunctions(): Promise<void> {
    this.#catalog.changed()
    await this.#catalog.load()
  }

  // Every query: the monitor runs and the catalog is loaded (until then, function calls go to the
  // primary, or wait for a load in flight).
  #ensureStarted(): void {
    this.#monitor.ensureStarted()
    this.#catalog.ensureLoading()
  }

  #afterPrimaryStatement(sql: string): void {
    if (mayChangeFunctions(sql)) this.#catalog.changed()
  }

  /**
   * Runs `fn` in a consistency context: one per request, job or message. `token` is what an
   * earlier request handed out (cookie, header); a malformed or tampered token never throws, its
   * reads go to the primary instead. Writes inside `fn` raise the context's position.
   *
   * @example
   * ```ts
   * // Express: one context per request; hand the position back after a write.
   * app.use((req, _res, next) => {
   *   db.router.run(req.get('x-consistency'), () => {
   *     next()
   *   })
   * })
   * app.post('/photos', async (req, res) => {
   *   await db.insertInto('photo').values(req.body).execute()
   *   res.set('x-consistency', db.router.token() ?? '').sendStatus(201)
   * })
   * ```
   */
  run<T>(token: string | undefined | null, fn: () => T): T {
    let tokenLsn: Lsn | undefined
    let invalid = false
    if (token !== undefined && token !== null && token !== '') {
      try {
        tokenLsn = this.#codec.decode(token)
      } catch {
        invalid = true
      }
    }
    return this.#context.run({ lsn: undefined, tokenLsn, invalid }, fn)
  }

  /**
   * The current context's consistency token (after its writes), to hand to the next request or
   * another service; undefined when the context has no position. Outside a context, the
   * process-wide position when `outsideContext` is `'process'`.
   */
  token(): string | undefined {
    const requirement = this.#context.requirement()
    return requirement.kind === 'lsn' ? this.#codec.encode(requirement.lsn) : undefined
  }

  /** Strict token parse: the WAL position as PostgreSQL text; throws `MalformedTokenError`. */
  parseToken(token: string): string {
    return formatLsn(this.#codec.decode(token))
  }

  /** Subscribes to routing and health events; returns the unsubscribe function. */
  on<K extends keyof RouterEvents>(event: K, listener: (payload: RouterEvents[K]) => void): () => void {
    return this.#events.on(event, listener)
  }

  /** Counters per node and reason, and each replica's health, lag and position. */
  metrics(): RouterSnapshot {
    return {
      ...this.#metrics.snapshot(),
      primary: this.#monitor.primary.name,
      primaryLsn: this.#monitor.primaryLsn === undefined ? undefined : formatLsn(this.#monitor.primaryLsn),
      replicas: this.#monitor.replicas.map((replica) => ({
        name: replica.name,
        status: replica.status,
        excludedFor: replica.excludedFor,
        replayLsn: replica.replayLsn === undefined ? undefined : formatLsn(replica.replayLsn),
        lagBytes: replica.lagBytes,
        lagSeconds: replica.lagSeconds,
        latencyMs: replica.latencyMs,
        errors: replica.errors,
        outstanding: replica.outstanding,
      })),
    }
  }

  /**
   * Runs `fn` with every query on the primary, however deep in the call stack (Rails'
   * `connected_to(role: :writing)`, GitLab's `use_primary`): for code that must read the latest
   * data regardless of positions. Nests; writes inside still raise the surrounding context's position.
   *
   * @example
   * ```ts
   * const invoice = await db.router.usePrimary(() => loadInvoice(id)) // every query of loadInvoice: primary
   * ```
   */
  usePrimary<T>(fn: () => T): T {
    return this.#scope.run('primary', fn)
  }

  /**
   * Runs `fn` with writes refused: any query that is not provably read-only (a write, a call of a
   * function not known read-only, raw SQL that is not a plain read, …) throws
   * `WritesPreventedError` instead of running (Rails' `while_preventing_writes`). Reads route as usual.
   */
  preventWrites<T>(fn: () => T): T {
    return this.#scope.run('prevent-writes', fn)
  }

  /**
   * Adds a replica at run time (a `pg.Pool` or `{ pool, name, weight }`); it takes reads after
   * its first good health check. Throws `InvalidOptionsError` for a bad input or a known name.
   */
  addReplica(input: NodeInput): Promise<void> {
    if (this.#closed) return Promise.reject(new RouterClosedError())
    return this.#membership.add(input)
  }

  /** Removes a replica by name or pool: no new reads go to it, its pool is ended. */
  removeReplica(nameOrPool: string | PoolLike): Promise<boolean> {
    if (this.#closed) return Promise.reject(new RouterClosedError())
    return this.#membership.remove(nameOrPool)
  }

  /**
   * Replaces the replica set (matched by name, or by pool when unnamed): new ones are added,
   * missing ones removed. What the `discoverReplicas` option calls on every refresh.
   */
  setReplicas(inputs: readonly NodeInput[]): Promise<void> {
    if (this.#closed) return Promise.reject(new RouterClosedError())
    return this.#membership.set(inputs)
  }

  /** Runs one query, routed by what it is (or by the forced mode). */
  async executeQuery<R>(compiledQuery: CompiledQuery, forced: RoutingMode): Promise<QueryResult<R>> {
    if (this.#closed) throw new RouterClosedError()
    this.#ensureStarted()
    const scope = this.#scope.getStore()
    const mode = forced === 'auto' && scope === 'primary' ? 'primary' : forced
    const declaredRead = mode === 'replica' || mode === 'replica-only'
    let kind = this.#classifier.classify(compiledQuery, declaredRead)
    if (kind.reason === 'volatile-function' && !this.#catalog.loaded && mode !== 'primary') {
      // Right after construction the catalog may still be loading: wait for it (bounded by
      // checkTimeoutMs) rather than send every function call to the primary. A failed load leaves
      // the function unknown, and the query on the primary.
      await this.#catalog.pending?.catch(() => {})
      kind = this.#classifier.classify(compiledQuery, declaredRead)
    }
    if (kind.write && (mode === 'replica-only' || scope === 'prevent-writes')) {
      throw new WritesPreventedError({ reason: kind.reason, queryKind: compiledQuery.query.kind })
    }
    if (mode === 'primary' || kind.write) {
      const reason = mode === 'primary' ? 'forced-primary' : kind.reason
      // Anything not provably read-only may have written: its position is read after it, so the
      // context's next read sees it (a function that writes, a locking select, raw SQL, …).
      const recordPosition = kind.write && this.#options.readYourWrites
      return this.#executeOnPrimary<R>(compiledQuery, reason, recordPosition, 0)
    }
    return this.#executeRead<R>(compiledQuery)
  }

  /** A primary connection for a transaction, `db.connection()` or a stream. */
  async provideConnection<T>(
    consumer: (connection: DatabaseConnection) => Promise<T>,
    mode: RoutingMode = 'auto',
  ): Promise<T> {
    if (this.#closed) throw new RouterClosedError()
    this.#ensureStarted()
    // Writes refused for the whole transaction / connection, as for single queries.
    const refuseWrites = mode === 'replica-only' || this.#scope.getStore() === 'prevent-writes'
    const { node, connection } = await this.#acquirePrimary()
    const pinned = new PinnedConnection(connection, node, {
      classify: (query) => {
        const kind = this.#classifier.classify(query, refuseWrites)
        if (refuseWrites && kind.write) {
          throw new WritesPreventedError({ reason: kind.reason, queryKind: query.query.kind })
        }
        return kind
      },
      onQuery: (self, query, startedAt, ok) => {
        if (ok && mayChangeFunctions(query.sql)) {
          this.#afterPrimaryStatement(query.sql)
          if (self.inTransaction) self.functionsChanged = true
        }
        this.#record(
          self.node,
          'primary',
          self.inTransaction ? 'transaction' : 'connection',
          query,
          startedAt,
          0,
          1,
          ok,
        )
      },
      failed: (self, error, wrote) => this.#primaryError(error, self.node, wrote),
      afterAutocommitWrite: async (self) => {
        if (this.#options.readYourWrites) await this.#recordPosition(self.inner)
      },
    })
    try {
      return await consumer(pinned)
    } finally {
      try {
        if (pinned.autocommitWrote && this.#options.readYourWrites) await this.#recordPosition(pinned.inner)
      } finally {
        connection.release()
      }
    }
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const pinned = asPinned(connection)
    await pinned.inner.executeQuery(beginStatement(settings))
    pinned.inTransaction = true
    pinned.transactionWrote = false
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const pinned = asPinned(connection)
    const wrote = pinned.transactionWrote && this.#options.readYourWrites
    pinned.transactionWrote = false
    try {
      const { rows } = await pinned.inner.executeQuery<{ command?: string }>(COMMIT)
      // PostgreSQL completes COMMIT with a ROLLBACK tag when an earlier error aborted the transaction.
      if (rows[0]?.command === 'ROLLBACK') throw new TransactionRolledBackError({ node: pinned.node.name })
    } catch (error) {
      // A COMMIT whose connection died may have committed: its position is unknown, so the
      // context's reads go to the primary (a SQL error at COMMIT, by contrast, rolled back).
      if (wrote && (isConnectionError(error) || isAbandoned(error))) this.#context.recordUnknownWrite()
      throw this.#primaryError(error, pinned.node, wrote)
    } finally {
      pinned.inTransaction = false
    }
    if (pinned.functionsChanged) {
      pinned.functionsChanged = false
      this.#catalog.changed() // committed now: reload what the catalog says
    }
    // Only after COMMIT succeeded, in its own statement: see CURRENT_LSN.
    if (wrote) await this.#recordPosition(pinned.inner)
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const pinned = asPinned(connection)
    pinned.inTransaction = false
    pinned.transactionWrote = false
    try {
      await pinned.inner.executeQuery(ROLLBACK)
    } catch (error) {
      // the connection is in an unknown state: it must not go back to the pool
      pinned.inner.release(true)
      throw this.#primaryError(error, pinned.node, false)
    }
  }

  async savepoint(connection: DatabaseConnection, name: string, action: SavepointAction): Promise<void> {
    const pinned = asPinned(connection)
    await pinned.inner.executeQuery(savepointStatement(action, name))
  }

  /** Stops the monitor and ends every pool (each pool once, even when listed twice). */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#membership.stopDiscovery()
    await this.#monitor.close()
    const seen = new Set<unknown>()
    await Promise.all(
      [...this.#primaries, ...this.#monitor.replicas.map((replica) => replica.node)].map(async (node) => {
        if (seen.has(node.pool)) return
        seen.add(node.pool)
        await node.destroy(this.#options.checkTimeoutMs).catch(() => {})
      }),
    )
  }

  async #executeRead<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const requirement: ReadRequirement = this.#options.readYourWrites
      ? this.#context.requirement()
      : { kind: 'none' }
    const failed = new Set<ReplicaState>()
    for (let attempt = 1; ; attempt++) {
      const picked = this.#readTargets.pick(requirement, failed)
      // Only a read-your-writes wait is asynchronous; the common path adds no extra ticks.
      const target = picked instanceof Promise ? await picked : picked
      const reason = attempt > 1 ? 'retry' : target.reason
      if (target.role === 'primary') {
        if (attempt > 1) this.#metrics.counters.retries++
        return this.#executeOnPrimary<R>(compiledQuery, reason, false, target.waitedMs)
      }
      const replica = target.replica as ReplicaState
      const startedAt = performance.now()
      let ok = false
      try {
        const result = await this.#runOnReplica<R>(replica, compiledQuery)
        ok = true
        if (attempt > 1) this.#metrics.counters.retries++
        return result
      } catch (error) {
        // Nothing was returned to the caller, so running the read elsewhere is safe when the
        // failure is the node's, not the query's. SQL errors are the caller's and are rethrown.
        if (!this.#replicaFailed(replica, error)) throw error
        failed.add(replica)
      } finally {
        this.#record(replica.node, 'replica', reason, compiledQuery, startedAt, target.waitedMs, attempt, ok)
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
    if (error instanceof ConnectFailure) {
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
  async #runOnReplica<R>(replica: ReplicaState, compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const node = replica.node
    let connection: PgConnection | undefined
    node.outstanding++
    try {
      const acquired = await node.acquire(true)
      connection = acquired
      acquired.deadlineMs = this.#options.replicaReadTimeoutMs
      return await node.abandonable(acquired, () => acquired.executeQuery<R>(compiledQuery))
    } finally {
      node.outstanding--
      connection?.release()
    }
  }

  /**
   * Acquires a connection on the primary. A failure to connect means nothing was sent, so after
   * re-detecting the primary (a failover) the connection is tried once on the new one.
   */
  async #acquirePrimary(): Promise<{ node: DatabaseNode; connection: PgConnection }> {
    let node = await this.#monitor.currentPrimary()
    try {
      return { node, connection: this.#primaryDeadline(await node.acquire()) }
    } catch (error) {
      if (!(error instanceof ConnectFailure)) throw error
      const next = await this.#monitor.detectPrimary()
      if (!next || next === node) throw new PrimaryUnreachableError({ node: node.name }, error.cause)
      node = next
      try {
        return { node, connection: this.#primaryDeadline(await node.acquire()) }
      } catch (retryError) {
        throw new PrimaryUnreachableError(
          { node: node.name },
          retryError instanceof ConnectFailure ? retryError.cause : retryError,
        )
      }
    }
  }

  #primaryDeadline(connection: PgConnection): PgConnection {
    connection.deadlineMs = this.#options.queryTimeoutMs
    return connection
  }

  /**
   * A statement on the primary failed: a typed error when the node failed (timed out, connection
   * lost), the driver's own error when the SQL did. A write whose outcome is unknown sends the
   * context's reads to the primary; the primary is re-detected in the background.
   */
  #primaryError(error: unknown, node: DatabaseNode, write: boolean): unknown {
    if (error instanceof ReadReplicaError) return error
    const timedOut = isAbandoned(error)
    if (!timedOut && !isConnectionError(error)) return error
    if (write) this.#context.recordUnknownWrite()
    if (timedOut) node.markUnresponsive()
    void this.#monitor.detectPrimary().catch(() => {})
    return timedOut
      ? new QueryTimeoutError({ node: node.name, timeoutMs: this.#options.queryTimeoutMs, write }, error)
      : new PrimaryConnectionLostError({ node: node.name, write }, error)
  }

  async #executeOnPrimary<R>(
    compiledQuery: CompiledQuery,
    reason: RouteReason,
    recordPosition: boolean,
    waitedMs: number,
    redirects = 0,
  ): Promise<QueryResult<R>> {
    const { node, connection } = await this.#acquirePrimary()
    const startedAt = performance.now()
    let ok = false
    try {
      let result: QueryResult<R>
      try {
        result = await connection.executeQuery<R>(compiledQuery)
      } catch (error) {
        if (isReadOnlyError(error)) {
          // The node we took for the primary is in recovery: the server refused the statement,
          // nothing was written. Re-detect and, if another host now accepts writes, run it there.
          const next = await this.#monitor.detectPrimary()
          if (next && next !== node && redirects === 0) {
            connection.release()
            return this.#executeOnPrimary<R>(compiledQuery, reason, recordPosition, waitedMs, redirects + 1)
          }
          throw new PrimaryReadOnlyError({ node: node.name }, error)
        }
        throw this.#primaryError(error, node, recordPosition)
      }
      ok = true
      if (recordPosition) await this.#recordPosition(connection)
      if (reason === 'ddl' || reason === 'raw-sql' || reason === 'forced-primary')
        this.#afterPrimaryStatement(compiledQuery.sql)
      return result
    } finally {
      this.#record(node, 'primary', reason, compiledQuery, startedAt, waitedMs, 1, ok)
      connection.release()
    }
  }

  async #recordPosition(connection: DatabaseConnection): Promise<void> {
    try {
      const { rows } = await connection.executeQuery<{ lsn: string }>(CURRENT_LSN)
      const lsn = parseLsn(rows[0]?.lsn)
      if (lsn === undefined) this.#context.recordUnknownWrite()
      else this.#context.recordWrite(lsn)
    } catch {
      // The write committed but its position is unknown: this context reads from the primary.
      this.#context.recordUnknownWrite()
    }
  }

  #record(
    node: DatabaseNode,
    role: 'primary' | 'replica',
    reason: RouteReason,
    query: CompiledQuery,
    startedAt: number,
    waitedMs: number,
    attempt: number,
    ok: boolean,
  ): void {
    this.#metrics.count(node.name, reason, ok)
    if (this.#events.has('route')) {
      this.#events.emit('route', {
        node: node.name,
        role,
        reason,
        queryKind: query.query.kind,
        durationMs: performance.now() - startedAt,
        waitedMs,
        attempt,
        ok,
      })
    }
  }
}

function asPinned(connection: DatabaseConnection): PinnedConnection {
  if (connection instanceof PinnedConnection) return connection
  throw new TypeError('[@scale/read-replica] transaction on a connection the router did not provide')
}
