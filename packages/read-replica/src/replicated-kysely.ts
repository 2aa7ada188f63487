import { type Dialect, type Driver, Kysely, PostgresDialect } from 'kysely'
import { ReadReplicaError } from './errors.js'
import { type ReplicatedKyselyOptions, resolveOptions } from './options.js'
import { QueryRouter } from './query-router.js'
import type { ReplicaRouter, RoutingMode } from './replica-router.js'
import { RouterCore } from './router-core.js'
import { RouterFacade } from './router-facade.js'
import { RoutingDriver } from './routing-driver.js'
import { RoutingQueryExecutor } from './routing-executor.js'

/**
 * Kysely's own Postgres dialect (compiler, adapter, introspector) over the routing driver. The
 * pool in its config is never asked for: the driver is replaced.
 */
class ReplicatedPostgresDialect extends PostgresDialect {
  readonly #driver: Driver

  constructor(driver: Driver) {
    super({
      pool: () =>
        Promise.reject(
          new ReadReplicaError(
            'E_REPLICA_INVALID_ARGUMENT',
            'the routing driver owns the pools; this dialect never opens one',
          ),
        ),
    })
    this.#driver = driver
  }

  override createDriver(): Driver {
    return this.#driver
  }
}

/**
 * A `Kysely<DB>` over a primary and its replicas, made by {@link createReplicatedKysely}. Use it
 * exactly like `Kysely<DB>` (it is one: `instanceof Kysely` holds); each query is routed by what
 * it is. `primary()` and `replica()` force a side, `router` holds consistency tokens, events and
 * metrics, and `close()` (or Kysely's `destroy()`) stops the monitor and ends every pool.
 */
export interface ReplicatedKysely<DB> extends Kysely<DB> {
  /** Consistency tokens, read-your-writes contexts, events, metrics and `close()`. */
  readonly router: ReplicaRouter
  /**
   * Everything through the returned instance runs on the primary: reads that must see the latest
   * data regardless of any token, or functions the router cannot know to be writes.
   *
   * @example
   * ```ts fragment
   * const balance = await db.primary().selectFrom('account').select('balance').where('id', '=', id).executeTakeFirst()
   * ```
   */
  primary(): Kysely<DB>
  /**
   * Declares raw SQL a read: raw `sql` through the returned instance is judged like a select
   * (a replica when every function it calls is known read-only; still subject to read-your-writes
   * and health). Writes still go to the primary, or, with `preventWrites: true`, are refused with
   * `WritesPreventedError` (nothing is sent).
   *
   * @example
   * ```ts fragment
   * const { rows } = await sql`select count(*) from photo`.execute(db.replica())
   * const reports = db.replica({ preventWrites: true }) // a write through it throws
   * ```
   */
  replica(options?: { preventWrites?: boolean }): Kysely<DB>
  /**
   * Stops the replica monitor and ends every pool (each once): the package convention's name for
   * Kysely's `destroy()`, which does the same. Idempotent; bounded (a pool whose server stopped
   * answering has its sockets closed after `checkTimeoutMs`). Afterwards every query and router
   * call throws `ReadReplicaClosedError`.
   */
  close(): Promise<void>
}

/** The implementation behind {@link ReplicatedKysely}: a Kysely subclass whose executor routes. */
class RoutedKysely<DB> extends Kysely<DB> implements ReplicatedKysely<DB> {
  readonly router: ReplicaRouter
  readonly #executor: RoutingQueryExecutor
  readonly #driver: Driver
  readonly #dialect: Dialect

  constructor(options: ReplicatedKyselyOptions) {
    const core = new RouterCore(resolveOptions(options))
    const queries = new QueryRouter(core)
    const driver = new RoutingDriver(queries)
    const dialect = new ReplicatedPostgresDialect(driver)
    const executor = new RoutingQueryExecutor(
      dialect.createQueryCompiler(),
      dialect.createAdapter(),
      queries,
      'auto',
    )
    super({ config: { dialect }, driver, dialect, executor })
    this.router = new RouterFacade(core)
    this.#executor = executor
    this.#driver = driver
    this.#dialect = dialect
  }

  primary(): Kysely<DB> {
    return this.#withMode('primary')
  }

  replica(options: { preventWrites?: boolean } = {}): Kysely<DB> {
    return this.#withMode(options.preventWrites === true ? 'replica-only' : 'replica')
  }

  close(): Promise<void> {
    return this.router.close()
  }

  #withMode(mode: RoutingMode): Kysely<DB> {
    return new Kysely<DB>({
      config: { dialect: this.#dialect },
      driver: this.#driver,
      dialect: this.#dialect,
      executor: this.#executor.withMode(mode),
    })
  }
}

/**
 * Turns a PostgreSQL primary and its streaming replicas into one Kysely instance: selects go to a
 * healthy replica, writes, DDL, write CTEs, `FOR UPDATE/SHARE`, transactions, `connection()` and
 * raw SQL to the primary, and a request never reads older data than it wrote (WAL positions).
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { createReplicatedKysely } from '@scale/read-replica'
 *
 * const db = createReplicatedKysely<Database>({
 *   primary: new pg.Pool({ connectionString: process.env.PRIMARY_URL }),
 *   replicas: [new pg.Pool({ connectionString: process.env.REPLICA_URL })],
 * })
 * await db.router.run(undefined, async () => {
 *   await db.insertInto('person').values({ name: 'Ada' }).execute() // primary
 *   await db.selectFrom('person').selectAll().execute() // a replica that has replayed the insert, else the primary
 * })
 * await db.close()
 * ```
 */
export function createReplicatedKysely<DB>(options: ReplicatedKyselyOptions): ReplicatedKysely<DB> {
  return new RoutedKysely<DB>(options)
}

/** The constructor behind {@link ReplicatedKysely}, kept for `new` and `instanceof` (deprecated). */
export interface ReplicatedKyselyConstructor {
  /** @deprecated Use {@link createReplicatedKysely}; `new ReplicatedKysely()` goes away in the next minor. */
  new <DB>(options: ReplicatedKyselyOptions): ReplicatedKysely<DB>
}

/**
 * @deprecated `new ReplicatedKysely(options)` still works (the same as {@link createReplicatedKysely},
 * whose result is also `instanceof ReplicatedKysely` and `instanceof Kysely`), until the next minor;
 * the type `ReplicatedKysely<DB>` is the interface above and stays.
 */
export const ReplicatedKysely: ReplicatedKyselyConstructor = RoutedKysely
