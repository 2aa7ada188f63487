import type { DatabaseConnection, TransactionSettings } from 'kysely'
import type { QueryClassifier } from './classify-query.js'
import { isConnectionError } from './connection-errors.js'
import type { ConsistencyContext } from './consistency-context.js'
import { ReadReplicaError, TransactionRolledBackError, WritesPreventedError } from './errors.js'
import { type FunctionCatalog, mayChangeFunctions } from './function-catalog.js'
import { isAbandoned } from './pg-connection.js'
import { PinnedConnection } from './pinned-connection.js'
import type { PrimaryExecutor } from './primary-executor.js'
import type { RouteRecorder } from './route-recorder.js'
import {
  beginStatement,
  COMMIT,
  ROLLBACK,
  type SavepointAction,
  savepointStatement,
} from './transaction-statements.js'

/**
 * Transactions, `db.connection()` and streams: one primary connection held for the consumer.
 * Every statement that is not provably read-only advances the context's position (at COMMIT in a
 * transaction, right after the statement otherwise); function DDL reloads the catalog.
 */
export class PinnedSessions {
  readonly #primary: PrimaryExecutor
  readonly #classifier: QueryClassifier
  readonly #catalog: FunctionCatalog
  readonly #context: ConsistencyContext
  readonly #recorder: RouteRecorder
  readonly #readYourWrites: boolean

  constructor(
    primary: PrimaryExecutor,
    classifier: QueryClassifier,
    catalog: FunctionCatalog,
    context: ConsistencyContext,
    recorder: RouteRecorder,
    readYourWrites: boolean,
  ) {
    this.#primary = primary
    this.#classifier = classifier
    this.#catalog = catalog
    this.#context = context
    this.#recorder = recorder
    this.#readYourWrites = readYourWrites
  }

  /** Runs `consumer` on a pinned primary connection; `refuseWrites`: statements not provably read-only throw. */
  async provide<T>(
    consumer: (connection: DatabaseConnection) => Promise<T>,
    refuseWrites: boolean,
  ): Promise<T> {
    const { node, connection } = await this.#primary.acquire()
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
          this.#catalog.changed()
          if (self.inTransaction) self.functionsChanged = true
        }
        const reason = self.inTransaction ? 'transaction' : 'connection'
        this.#recorder.record(self.node, 'primary', reason, query, startedAt, 0, 1, ok)
      },
      failed: (self, error, wrote) => this.#primary.error(error, self.node, wrote),
      afterAutocommitWrite: async (self) => {
        if (this.#readYourWrites) await this.#primary.recordPosition(self.inner)
      },
    })
    try {
      return await consumer(pinned)
    } finally {
      try {
        if (pinned.autocommitWrote && this.#readYourWrites) await this.#primary.recordPosition(pinned.inner)
      } finally {
        connection.release()
      }
    }
  }

  async begin(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const pinned = asPinned(connection)
    await pinned.inner.executeQuery(beginStatement(settings))
    pinned.inTransaction = true
    pinned.transactionWrote = false
  }

  async commit(connection: DatabaseConnection): Promise<void> {
    const pinned = asPinned(connection)
    const wrote = pinned.transactionWrote && this.#readYourWrites
    pinned.transactionWrote = false
    try {
      const { rows } = await pinned.inner.executeQuery<{ command?: string }>(COMMIT)
      // PostgreSQL completes COMMIT with a ROLLBACK tag when an earlier error aborted the transaction.
      if (rows[0]?.command === 'ROLLBACK') throw new TransactionRolledBackError({ node: pinned.node.name })
    } catch (error) {
      // A COMMIT whose connection died may have committed: its position is unknown, so the
      // context's reads go to the primary (a SQL error at COMMIT, by contrast, rolled back).
      if (wrote && (isConnectionError(error) || isAbandoned(error))) this.#context.recordUnknownWrite()
      throw this.#primary.error(error, pinned.node, wrote)
    } finally {
      pinned.inTransaction = false
    }
    if (pinned.functionsChanged) {
      pinned.functionsChanged = false
      this.#catalog.changed() // committed now: reload what the catalog says
    }
    // Only after COMMIT succeeded, in its own statement (inside it the commit record does not exist yet).
    if (wrote) await this.#primary.recordPosition(pinned.inner)
  }

  async rollback(connection: DatabaseConnection): Promise<void> {
    const pinned = asPinned(connection)
    pinned.inTransaction = false
    pinned.transactionWrote = false
    try {
      await pinned.inner.executeQuery(ROLLBACK)
    } catch (error) {
      // the connection is in an unknown state: it must not go back to the pool
      pinned.inner.release(true)
      throw this.#primary.error(error, pinned.node, false)
    }
  }

  async savepoint(connection: DatabaseConnection, name: string, action: SavepointAction): Promise<void> {
    const pinned = asPinned(connection)
    await pinned.inner.executeQuery(savepointStatement(action, name))
  }
}

function asPinned(connection: DatabaseConnection): PinnedConnection {
  if (connection instanceof PinnedConnection) return connection
  throw new ReadReplicaError(
    'E_REPLICA_FOREIGN_CONNECTION',
    'transaction control on a connection the router did not provide',
  )
}
