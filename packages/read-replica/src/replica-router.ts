import { AsyncLocalStorage } from 'node:async_hooks'
import type { CompiledQuery, DatabaseConnection, QueryResult, TransactionSettings } from 'kysely'
import { type Balancer, createBalancer } from './balancer.js'
import { QueryClassifier } from './classify-query.js'
import { ConsistencyContext } from './consistency-context.js'
import { ConsistencyTokenCodec } from './consistency-token.js'
import { DatabaseNode, type NodeInput, type PoolLike } from './database-node.js'
import { PrimaryUnreachableError, RouterClosedError, WritesPreventedError } from './errors.js'
import { FunctionCatalog, mayChangeFunctions } from './function-catalog.js'
import { formatLsn, type Lsn } from './lsn.js'
import type { ResolvedOptions } from './options.js'
import { PinnedSessions } from './pinned-sessions.js'
import { PrimaryExecutor } from './primary-executor.js'
import { ReadTargetPicker } from './read-target.js'
import { ReplicaMembership } from './replica-membership.js'
import { ReplicaMonitor } from './replica-monitor.js'
import { ReplicaReads } from './replica-reads.js'
import { RouteRecorder } from './route-recorder.js'
import { logRouterEvents, RouterEventEmitter, type RouterEvents } from './router-events.js'
import { type RouterCounters, RouterMetrics } from './router-metrics.js'
import type { SavepointAction } from './transaction-statements.js'

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
  readonly #primary: PrimaryExecutor
  readonly #reads: ReplicaReads
  readonly #pinned: PinnedSessions
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
      nodes: async () => [
        await this.#monitor.currentPrimary(),
        ...this.#monitor.healthyReplicas().map((replica) => replica.node),
      ],
      timeoutMs: options.checkTimeoutMs,
      retryMs: options.monitorIntervalMs,
    })
    this.#classifier = new QueryClassifier(this.#catalog)
    this.#context = new ConsistencyContext(options.outsideContext === 'process')
    if (options.logger) logRouterEvents(this.#events, options.logger)
    this.#codec = new ConsistencyTokenCodec(options.tokenSecret)
    const recorder = new RouteRecorder(this.#metrics, this.#events)
    this.#primary = new PrimaryExecutor(this.#monitor, this.#context, recorder, {
      queryTimeoutMs: options.queryTimeoutMs,
      afterStatement: (sql) => {
        if (mayChangeFunctions(sql)) this.#catalog.changed()
      },
    })
    const targets = new ReadTargetPicker(this.#monitor, this.#balancer, this.#metrics, {
      whenNoReplica: options.whenNoReplica,
      rywWaitMs: options.rywWaitMs,
    })
    this.#reads = new ReplicaReads(this.#monitor, targets, this.#primary, this.#context, recorder, options)
    this.#pinned = new PinnedSessions(
      this.#primary,
      this.#classifier,
      this.#catalog,
      this.#context,
      recorder,
      options.readYourWrites,
    )
  }

  /**
   * Starts the monitor (it also starts on the first query) and resolves after its first check
   * of every node, so routing decisions start from known health and positions.
   */
  async ready(): Promise<void> {
    // A catalog that cannot be loaded yet (primary down) does not fail ready(): until it loads
    // (retried on later queries), selects calling functions go to the primary.
    await Promise.all([
      this.#monitor.start(),
      this.#closed ? undefined : this.#catalog.load().catch(() => {}),
    ])
  }

  /**
   * Reloads which functions are read-only from the primary's `pg_proc`. The router does this by
   * itself after function DDL it runs; call it after functions changed elsewhere (a migration
   * run by another process).
   */
  async reloadFunctions(): Promise<void> {
    if (this.#closed) throw new RouterClosedError()
    this.#catalog.changed()
    try {
      await this.#catalog.load()
    } catch (error) {
      throw new PrimaryUnreachableError({ node: this.#monitor.primary.name }, error)
    }
  }

  // Every query: the monitor runs and the catalog is loaded (until then, function calls go to the
  // primary, or wait for a load in flight).
  #ensureStarted(): void {
    this.#monitor.ensureStarted()
    this.#catalog.ensureLoading()
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
      return this.#primary.execute<R>(compiledQuery, reason, recordPosition, 0)
    }
    return this.#reads.read<R>(compiledQuery)
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
    return this.#pinned.provide(consumer, refuseWrites)
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.#pinned.begin(connection, settings)
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#pinned.commit(connection)
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#pinned.rollback(connection)
  }

  savepoint(connection: DatabaseConnection, name: string, action: SavepointAction): Promise<void> {
    return this.#pinned.savepoint(connection, name, action)
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
}
