import { CompiledQuery, type QueryResult } from 'kysely'
import type { RouteReason } from './classify-query.js'
import { isConnectionError, isReadOnlyError } from './connection-errors.js'
import type { ConsistencyContext } from './consistency-context.js'
import type { DatabaseNode } from './database-node.js'
import {
  ConnectFailedError,
  PrimaryConnectionLostError,
  PrimaryReadOnlyError,
  PrimaryUnreachableError,
  QueryTimeoutError,
  ReadReplicaError,
} from './errors.js'
import { parseLsn } from './lsn.js'
import { isAbandoned, type PgConnection } from './pg-connection.js'
import type { ReplicaMonitor } from './replica-monitor.js'
import type { RouteRecorder } from './route-recorder.js'

// Read after COMMIT, in its own statement: inside the writing statement the commit record does
// not exist yet. The insert position (not the write position) is used because with
// synchronous_commit = off the write position may still be behind the commit record.
const CURRENT_LSN = CompiledQuery.raw('select pg_current_wal_insert_lsn()::text as lsn')

export interface PrimaryExecutorSettings {
  readonly queryTimeoutMs: number
  /** a statement ran on the primary (the function catalog reloads after function DDL) */
  readonly afterStatement: (sql: string) => void
}

/**
 * Everything that runs on the primary: taking a connection (following a failover), running a
 * statement within `queryTimeoutMs`, typing node failures, and reading the WAL position a write
 * leaves for read-your-writes.
 */
export class PrimaryExecutor {
  readonly #monitor: ReplicaMonitor
  readonly #context: ConsistencyContext
  readonly #recorder: RouteRecorder
  readonly #settings: PrimaryExecutorSettings

  constructor(
    monitor: ReplicaMonitor,
    context: ConsistencyContext,
    recorder: RouteRecorder,
    settings: PrimaryExecutorSettings,
  ) {
    this.#monitor = monitor
    this.#context = context
    this.#recorder = recorder
    this.#settings = settings
  }

  /**
   * A connection on the primary. A failure to connect means nothing was sent, so after
   * re-detecting the primary (a failover) the connection is tried once on the new one.
   */
  async acquire(): Promise<{ node: DatabaseNode; connection: PgConnection }> {
    let node = await this.#monitor.currentPrimary()
    try {
      return { node, connection: this.#withDeadline(await node.acquire()) }
    } catch (error) {
      if (!(error instanceof ConnectFailedError)) throw error
      const next = await this.#monitor.detectPrimary()
      if (!next || next === node) throw new PrimaryUnreachableError({ node: node.name }, error.cause)
      node = next
      try {
        return { node, connection: this.#withDeadline(await node.acquire()) }
      } catch (retryError) {
        throw new PrimaryUnreachableError(
          { node: node.name },
          retryError instanceof ConnectFailedError ? retryError.cause : retryError,
        )
      }
    }
  }

  #withDeadline(connection: PgConnection): PgConnection {
    connection.deadlineMs = this.#settings.queryTimeoutMs
    return connection
  }

  /**
   * A statement on the primary failed: a typed error when the node failed (timed out, connection
   * lost), the driver's own error when the SQL did. A write whose outcome is unknown sends the
   * context's reads to the primary; the primary is re-detected in the background.
   */
  error(error: unknown, node: DatabaseNode, write: boolean): unknown {
    if (error instanceof ReadReplicaError) return error
    const timedOut = isAbandoned(error)
    if (!timedOut && !isConnectionError(error)) return error
    if (write) this.#context.recordUnknownWrite()
    if (timedOut) node.markUnresponsive()
    void this.#monitor.detectPrimary().catch(() => {})
    return timedOut
      ? new QueryTimeoutError({ node: node.name, timeoutMs: this.#settings.queryTimeoutMs, write }, error)
      : new PrimaryConnectionLostError({ node: node.name, write }, error)
  }

  /** Runs one statement; `recordPosition`: it may have written, read its WAL position after it. */
  async execute<R>(
    compiledQuery: CompiledQuery,
    reason: RouteReason,
    recordPosition: boolean,
    waitedMs: number,
    redirects = 0,
  ): Promise<QueryResult<R>> {
    const { node, connection } = await this.acquire()
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
            return this.execute<R>(compiledQuery, reason, recordPosition, waitedMs, redirects + 1)
          }
          throw new PrimaryReadOnlyError({ node: node.name }, error)
        }
        throw this.error(error, node, recordPosition)
      }
      ok = true
      if (recordPosition) await this.recordPosition(connection)
      if (reason === 'ddl' || reason === 'raw-sql' || reason === 'forced-primary')
        this.#settings.afterStatement(compiledQuery.sql)
      return result
    } finally {
      this.#recorder.record(node, 'primary', reason, compiledQuery, startedAt, waitedMs, 1, ok)
      connection.release()
    }
  }

  /** Reads the primary's WAL position on `connection` (after a committed write) into the context. */
  async recordPosition(connection: PgConnection): Promise<void> {
    try {
      const { rows } = await connection.executeQuery<{ lsn: string }>(CURRENT_LSN)
      const lsn = parseLsn(rows[0]?.lsn)
      if (lsn === undefined) {
        this.#context.recordUnknownWrite()
      } else {
        this.#context.recordWrite(lsn)
        this.#monitor.noteWritePosition(lsn)
      }
    } catch {
      // The write committed but its position is unknown: this context reads from the primary.
      this.#context.recordUnknownWrite()
    }
  }
}
