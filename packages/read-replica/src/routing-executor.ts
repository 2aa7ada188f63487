import {
  type CompiledQuery,
  type ConnectionProvider,
  DefaultQueryExecutor,
  type DialectAdapter,
  type KyselyPlugin,
  type QueryCompiler,
  type QueryResult,
} from 'kysely'
import type { QueryRouter } from './query-router.js'
import type { RoutingMode } from './replica-router.js'

/**
 * Kysely's executor, with one change: a single query is handed to the router *with* its compiled
 * operation-node tree before any connection is taken, so each query picks its node. Everything
 * that asks for a connection first (transactions, `db.connection()`, streams) goes through
 * `provideConnection` and is pinned to the primary. That is how a pinned connection is told
 * apart from a single query without guessing from the first statement.
 */
export class RoutingQueryExecutor extends DefaultQueryExecutor {
  readonly #router: QueryRouter
  readonly #mode: RoutingMode
  readonly #compiler: QueryCompiler
  readonly #adapter: DialectAdapter

  constructor(
    compiler: QueryCompiler,
    adapter: DialectAdapter,
    router: QueryRouter,
    mode: RoutingMode,
    plugins: readonly KyselyPlugin[] = [],
  ) {
    const pinnedProvider: ConnectionProvider = {
      provideConnection: (consumer) => router.provideConnection(consumer, mode),
    }
    super(compiler, adapter, pinnedProvider, [...plugins])
    this.#router = router
    this.#mode = mode
    this.#compiler = compiler
    this.#adapter = adapter
  }

  override async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    let result = await this.#router.executeQuery<R>(compiledQuery, this.#mode)
    for (const plugin of this.plugins) {
      result = (await plugin.transformResult({
        result: result as QueryResult<Record<string, unknown>>,
        queryId: compiledQuery.queryId,
      })) as QueryResult<R>
    }
    return result
  }

  /** The same routing with another mode (`db.primary()`, `db.replica()`). */
  withMode(mode: RoutingMode): RoutingQueryExecutor {
    return new RoutingQueryExecutor(this.#compiler, this.#adapter, this.#router, mode, this.plugins)
  }

  override withPlugins(plugins: readonly KyselyPlugin[]): RoutingQueryExecutor {
    return new RoutingQueryExecutor(this.#compiler, this.#adapter, this.#router, this.#mode, [
      ...this.plugins,
      ...plugins,
    ])
  }

  override withPlugin(plugin: KyselyPlugin): RoutingQueryExecutor {
    return new RoutingQueryExecutor(this.#compiler, this.#adapter, this.#router, this.#mode, [
      ...this.plugins,
      plugin,
    ])
  }

  override withPluginAtFront(plugin: KyselyPlugin): RoutingQueryExecutor {
    return new RoutingQueryExecutor(this.#compiler, this.#adapter, this.#router, this.#mode, [
      plugin,
      ...this.plugins,
    ])
  }

  override withoutPlugins(): RoutingQueryExecutor {
    return new RoutingQueryExecutor(this.#compiler, this.#adapter, this.#router, this.#mode, [])
  }
  // withConnectionProvider stays Kysely's: inside a transaction or connection() every query must
  // run on that one pinned connection.
}
