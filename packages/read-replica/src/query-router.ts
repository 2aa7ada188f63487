import type { CompiledQuery, DatabaseConnection, QueryResult, TransactionSettings } from 'kysely'
import { WritesPreventedError } from './errors.js'
import type { RoutingMode } from './replica-router.js'
import type { RouterCore } from './router-core.js'
import type { SavepointAction } from './transaction-statements.js'

/**
 * The Kysely side of the router: what the query executor and the driver call. A single query is
 * routed by what it is (or by the forced mode); transactions, `db.connection()` and streams get a
 * primary connection pinned for their whole life. Never reachable from `db.router`.
 */
export class QueryRouter {
  readonly #core: RouterCore

  constructor(core: RouterCore) {
    this.#core = core
  }

  /** Runs one query, routed by what it is (or by the forced mode). */
  async executeQuery<R>(compiledQuery: CompiledQuery, forced: RoutingMode): Promise<QueryResult<R>> {
    const core = this.#core
    core.assertOpen('executeQuery')
    core.ensureStarted()
    const scope = core.scope.getStore()
    const mode = forced === 'auto' && scope === 'primary' ? 'primary' : forced
    const declaredRead = mode === 'replica' || mode === 'replica-only'
    let kind = core.classifier.classify(compiledQuery, declaredRead)
    if (kind.reason === 'volatile-function' && !core.catalog.loaded && mode !== 'primary') {
      // Right after construction the catalog may still be loading: wait for it (bounded by
      // checkTimeoutMs) rather than send every function call to the primary. A failed load leaves
      // the function unknown, and the query on the primary.
      await core.catalog.pending?.catch(() => {})
      kind = core.classifier.classify(compiledQuery, declaredRead)
    }
    if (kind.write && (mode === 'replica-only' || scope === 'prevent-writes')) {
      throw new WritesPreventedError({ reason: kind.reason, queryKind: compiledQuery.query.kind })
    }
    if (mode === 'primary' || kind.write) {
      const reason = mode === 'primary' ? 'forced-primary' : kind.reason
      // Anything not provably read-only may have written: its position is read after it, so the
      // context's next read sees it (a function that writes, a locking select, raw SQL, …).
      const recordPosition = kind.write && core.options.readYourWrites
      return core.primary.execute<R>(compiledQuery, reason, recordPosition, 0)
    }
    return core.reads.read<R>(compiledQuery)
  }

  /** A primary connection for a transaction, `db.connection()` or a stream. */
  async provideConnection<T>(
    consumer: (connection: DatabaseConnection) => Promise<T>,
    mode: RoutingMode,
  ): Promise<T> {
    const core = this.#core
    core.assertOpen('connection')
    core.ensureStarted()
    // Writes refused for the whole transaction / connection, as for single queries.
    const refuseWrites = mode === 'replica-only' || core.scope.getStore() === 'prevent-writes'
    return core.pinned.provide(consumer, refuseWrites)
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.#core.pinned.begin(connection, settings)
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#core.pinned.commit(connection)
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#core.pinned.rollback(connection)
  }

  savepoint(connection: DatabaseConnection, name: string, action: SavepointAction): Promise<void> {
    return this.#core.pinned.savepoint(connection, name, action)
  }

  close(): Promise<void> {
    return this.#core.close()
  }
}
