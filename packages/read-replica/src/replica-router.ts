import type { NodeInput, PoolLike } from './database-node.js'
import type { RouterEvents } from './router-events.js'
import type { RouterCounters } from './router-metrics.js'

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
 * `db.router`: consistency contexts and tokens, routing scopes, events, metrics, health and the
 * replica set of a replicated Kysely instance. Queries themselves go through `db`.
 */
export interface ReplicaRouter {
  /**
   * Starts the monitor (it also starts on the first query) and resolves after its first check
   * of every node, so routing decisions start from known health and positions.
   */
  ready(): Promise<void>

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
  run<T>(token: string | undefined | null, fn: () => T): T

  /**
   * The current context's consistency token (after its writes), to hand to the next request or
   * another service; undefined when the context has no position. Outside a context, the
   * process-wide position when `outsideContext` is `'process'`.
   */
  token(): string | undefined

  /** Strict token parse: the WAL position as PostgreSQL text; throws `MalformedTokenError`. */
  parseToken(token: string): string

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
  usePrimary<T>(fn: () => T): T

  /**
   * Runs `fn` with writes refused: any query that is not provably read-only (a write, a call of a
   * function not known read-only, raw SQL that is not a plain read, …) throws
   * `WritesPreventedError` instead of running (Rails' `while_preventing_writes`). Reads route as usual.
   */
  preventWrites<T>(fn: () => T): T

  /** Subscribes to routing and health events; returns the unsubscribe function. */
  on<K extends keyof RouterEvents>(event: K, listener: (payload: RouterEvents[K]) => void): () => void

  /** Counters per node and reason, and each replica's health, lag and position. */
  metrics(): RouterSnapshot

  /**
   * Reloads which functions are read-only from the primary's `pg_proc`. The router does this by
   * itself after function DDL it runs; call it after functions changed elsewhere (a migration
   * run by another process).
   */
  reloadFunctions(): Promise<void>

  /**
   * Adds a replica at run time (a `pg.Pool` or `{ pool, name, weight }`); it takes reads after
   * its first good health check. Throws `ReadReplicaOptionsError` for a bad input or a known name.
   */
  addReplica(input: NodeInput): Promise<void>

  /** Removes a replica by name or pool: no new reads go to it, its pool is ended. */
  removeReplica(nameOrPool: string | PoolLike): Promise<boolean>

  /**
   * Replaces the replica set (matched by name, or by pool when unnamed): new ones are added,
   * missing ones removed. What the `discoverReplicas` option calls on every refresh.
   */
  setReplicas(inputs: readonly NodeInput[]): Promise<void>

  /**
   * Stops the monitor and ends every pool; the same as `db.close()` / `db.destroy()`. Idempotent;
   * afterwards every call throws `ReadReplicaClosedError`.
   */
  close(): Promise<void>
}
