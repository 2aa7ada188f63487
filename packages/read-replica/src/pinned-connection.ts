import type { CompiledQuery, DatabaseConnection, QueryResult } from 'kysely'
import { classifyQuery } from './classify-query.js'
import type { DatabaseNode } from './database-node.js'

/**
 * A primary connection held for a transaction or `db.connection()`. Every statement runs on it;
 * it remembers whether anything may have written so the router reads the WAL position once the
 * write is committed (at COMMIT for a transaction, at release for autocommit statements).
 */
export class PinnedConnection implements DatabaseConnection {
  readonly inner: DatabaseConnection
  readonly node: DatabaseNode
  readonly #onQuery: (pinned: PinnedConnection, query: CompiledQuery, startedAt: number, ok: boolean) => void
  inTransaction = false
  transactionWrote = false
  autocommitWrote = false

  constructor(
    inner: DatabaseConnection,
    node: DatabaseNode,
    onQuery: (pinned: PinnedConnection, query: CompiledQuery, startedAt: number, ok: boolean) => void,
  ) {
    this.inner = inner
    this.node = node
    this.#onQuery = onQuery
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    this.#markWrite(compiledQuery)
    const startedAt = performance.now()
    let ok = false
    try {
      const result = await this.inner.executeQuery<R>(compiledQuery)
      ok = true
      return result
    } finally {
      this.#onQuery(this, compiledQuery, startedAt, ok)
    }
  }

  async *streamQuery<R>(
    compiledQuery: CompiledQuery,
    chunkSize?: number,
  ): AsyncIterableIterator<QueryResult<R>> {
    this.#markWrite(compiledQuery)
    const startedAt = performance.now()
    // Reported when the stream ends; a consumer that stops early is not a failure.
    let ok = true
    try {
      yield* this.inner.streamQuery<R>(compiledQuery, chunkSize)
    } catch (error) {
      ok = false
      throw error
    } finally {
      this.#onQuery(this, compiledQuery, startedAt, ok)
    }
  }

  // Marked before running: a statement that fails midway may still have written (e.g. a raw
  // multi-statement), and a spare position read costs nothing in correctness.
  #markWrite(compiledQuery: CompiledQuery): void {
    const { write, reason } = classifyQuery(compiledQuery.query, false)
    if (!write || reason === 'locking') return
    if (this.inTransaction) this.transactionWrote = true
    else this.autocommitWrote = true
  }
}
