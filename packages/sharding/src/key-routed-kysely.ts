import {
  type CompiledQuery,
  type ConnectionBuilder,
  type ConnectionProvider,
  type ControlledTransactionBuilder,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  Kysely,
  type KyselyPlugin,
  PostgresDialect,
  type QueryExecutor,
  type QueryId,
  type QueryResult,
  type RootOperationNode,
  type TransactionBuilder,
} from 'kysely'
import { ShardingError } from './errors.js'

/** What a key-routed instance needs from the router: the shard now, and a retrying run. */
export interface BucketRoute {
  // biome-ignore lint/suspicious/noExplicitAny: shards share one DB type, checked at the factory
  shardDb(): Kysely<any>
  runFenced<R>(attempt: (executor: QueryExecutor) => Promise<R>): Promise<R>
}

/**
 * Kysely's executor for one bucket: every call goes to the executor of the shard that owns the
 * bucket *when the query runs* (so a `@scale/read-replica` shard still routes reads to its
 * replicas), and a single query refused by a fenced shard is routed again and retried.
 */
class BucketExecutor implements QueryExecutor {
  readonly #route: BucketRoute
  readonly #extra: readonly KyselyPlugin[]

  constructor(route: BucketRoute, extra: readonly KyselyPlugin[] = []) {
    this.#route = route
    this.#extra = extra
  }

  #target(executor: QueryExecutor = this.#route.shardDb().getExecutor()): QueryExecutor {
    return this.#extra.length === 0 ? executor : executor.withPlugins(this.#extra)
  }

  get adapter(): DialectAdapter {
    return this.#target().adapter
  }
  get plugins(): readonly KyselyPlugin[] {
    return this.#target().plugins
  }
  transformQuery<T extends RootOperationNode>(node: T, queryId: QueryId): T {
    return this.#target().transformQuery(node, queryId)
  }
  compileQuery<R = unknown>(node: RootOperationNode, queryId: QueryId): CompiledQuery<R> {
    return this.#target().compileQuery<R>(node, queryId)
  }
  executeQuery<R>(compiledQuery: CompiledQuery<R>): Promise<QueryResult<R>> {
    return this.#route.runFenced((executor) => this.#target(executor).executeQuery(compiledQuery))
  }
  stream<R>(compiledQuery: CompiledQuery<R>, chunkSize: number): AsyncIterableIterator<QueryResult<R>> {
    return this.#target().stream(compiledQuery, chunkSize)
  }
  provideConnection<T>(consumer: (connection: DatabaseConnection) => Promise<T>): Promise<T> {
    return this.#target().provideConnection(consumer)
  }
  withConnectionProvider(connectionProvider: ConnectionProvider): QueryExecutor {
    return this.#target().withConnectionProvider(connectionProvider)
  }
  withPlugin(plugin: KyselyPlugin): QueryExecutor {
    return new BucketExecutor(this.#route, [...this.#extra, plugin])
  }
  withPlugins(plugins: readonly KyselyPlugin[]): QueryExecutor {
    return new BucketExecutor(this.#route, [...this.#extra, ...plugins])
  }
  withPluginAtFront(plugin: KyselyPlugin): QueryExecutor {
    return new BucketExecutor(this.#route, [plugin, ...this.#extra])
  }
  withoutPlugins(): QueryExecutor {
    return this.#target().withoutPlugins()
  }
}

/** Connections always come from the shard's own executor; this driver is never asked for one. */
class DelegatingDriver implements Driver {
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    throw new ShardingError('E_SHARD_UNKNOWN', 'a key-routed instance has no connections of its own')
  }
  async beginTransaction(): Promise<void> {}
  async commitTransaction(): Promise<void> {}
  async rollbackTransaction(): Promise<void> {}
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {}
}

/**
 * Kysely's own Postgres dialect (compiler, adapter, introspector) over the delegating driver. The
 * pool in its config is never asked for: the driver is replaced, and queries go to the shard's own.
 */
class PostgresShardDialect extends PostgresDialect {
  constructor() {
    super({
      pool: () =>
        Promise.reject(
          new ShardingError(
            'E_SHARD_UNREACHABLE',
            'a key-routed instance opens no pool: its queries run on the shard',
          ),
        ),
    })
  }

  override createDriver(): Driver {
    return new DelegatingDriver()
  }
}

const dialect = new PostgresShardDialect()

/**
 * The Kysely that `forKey()` returns. Single queries run on the bucket's shard with retry;
 * transactions and `connection()` are the shard's own (bound to it for their whole life: a
 * fenced write inside one fails the transaction, see `ShardedKysely.transactionForKey`).
 * `destroy()` does nothing: the shards belong to the sharded instance.
 */
export class KeyRoutedKysely<DB> extends Kysely<DB> {
  readonly #route: BucketRoute

  constructor(route: BucketRoute) {
    super({
      config: { dialect },
      dialect,
      driver: new DelegatingDriver(),
      executor: new BucketExecutor(route),
    })
    this.#route = route
  }

  override transaction(): TransactionBuilder<DB> {
    return this.#route.shardDb().transaction()
  }
  override startTransaction(): ControlledTransactionBuilder<DB> {
    return this.#route.shardDb().startTransaction()
  }
  override connection(): ConnectionBuilder<DB> {
    return this.#route.shardDb().connection()
  }
  override async destroy(): Promise<void> {}
}
