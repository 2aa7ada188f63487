import type { CompiledQuery, DatabaseConnection, QueryResult } from 'kysely'
import type { QueryClass } from './classify-query.js'
import type { DatabaseNode } from './database-node.js'
import type { PgConnection } from './pg-connection.js'

/** What a pinned connection reports to the router. */
export interface PinnedConnectionHooks {
  /** classifies a statement (the router's classifier, raw SQL never declared read-only) */
  classify(query: CompiledQuery): QueryClass
  /** every statement, once it finished */
  onQuery(pinned: PinnedConnection, query: CompiledQuery, startedAt: number, ok: boolean): void
  /**
   * An autocommit statement that is not provably read-only has finished (or failed midway): the
   * router reads the WAL position now, so a read later in the same context, even before the
   * connection is released, sees it.
   */
  afterAutocommitWrite(pinned: PinnedConnection, query: CompiledQuery): Promise<void>
  /** the error to throw for a failed statement (typed when the node, not the SQL, failed) */
  failed(pinned: PinnedConnection, error: unknown, wrote: boolean): unknown
}

/**
 * A primary connection held for a transaction or `db.connection()`. Every statement runs on it;
 * every statement that is not provably read-only advances the context's position: at COMMIT for
 * a transaction, right after the statement otherwise (at the end for a stream).
 */
export class PinnedConnection implements DatabaseConnection {
  readonly inner: PgConnection
  readonly node: DatabaseNode
  readonly #hooks: PinnedConnectionHooks
  inTransaction = false
  transactionWrote = false
  /** a stream wrote outside a transaction: its position is read when the connection is released */
  autocommitWrote = false
  /** the open transaction ran function DDL: the catalog is reloaded again after COMMIT */
  functionsChanged = false

  constructor(inner: PgConnection, node: DatabaseNode, hooks: PinnedConnectionHooks) {
    this.inner = inner
    this.node = node
    this.#hooks = hooks
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const wrote = this.#hooks.classify(compiledQuery).write
    if (wrote && this.inTransaction) this.transactionWrote = true
    const startedAt = performance.now()
    let ok = false
    try {
      const result = await this.inner.executeQuery<R>(compiledQuery)
      ok = true
      return result
    } catch (error) {
      throw this.#hooks.failed(this, error, wrote && !this.inTransaction)
    } finally {
      this.#hooks.onQuery(this, compiledQuery, startedAt, ok)
      // Also after a failure: a raw multi-statement may have committed part of its work.
      if (wrote && !this.inTransaction) await this.#hooks.afterAutocommitWrite(this, compiledQuery)
    }
  }

  async *streamQuery<R>(
    compiledQuery: CompiledQuery,
    chunkSize?: number,
  ): AsyncIterableIterator<QueryResult<R>> {
    if (this.#hooks.classify(compiledQuery).write) {
      if (this.inTransaction) this.transactionWrote = true
      else this.autocommitWrote = true
    }
    const startedAt = performance.now()
    // Reported when the stream ends; a consumer that stops early is not a failure.
    let ok = true
    try {
      yield* this.inner.streamQuery<R>(compiledQuery, chunkSize)
    } catch (error) {
      ok = false
      throw error
    } finally {
      this.#hooks.onQuery(this, compiledQuery, startedAt, ok)
    }
  }
}
