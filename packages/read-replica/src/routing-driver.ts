import type { DatabaseConnection, Driver, QueryCompiler, TransactionSettings } from 'kysely'
import { ReadReplicaError } from './errors.js'
import type { QueryRouter } from './query-router.js'

/**
 * The Driver Kysely calls for transaction control and `destroy()`. Connections reach it already
 * pinned to the primary by the router; COMMIT goes through the router so the WAL position is read
 * right after it.
 */
export class RoutingDriver implements Driver {
  readonly #router: QueryRouter

  constructor(router: QueryRouter) {
    this.#router = router
  }

  async init(): Promise<void> {}

  acquireConnection(): Promise<DatabaseConnection> {
    // Kysely only calls this through a connection provider, and ours asks the router instead.
    return Promise.reject(
      new ReadReplicaError(
        'E_REPLICA_FOREIGN_CONNECTION',
        'the driver was asked for a connection directly; connections are provided by the router',
      ),
    )
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.#router.beginTransaction(connection, settings)
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#router.commitTransaction(connection)
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#router.rollbackTransaction(connection)
  }

  savepoint(
    connection: DatabaseConnection,
    name: string,
    _compile: QueryCompiler['compileQuery'],
  ): Promise<void> {
    return this.#router.savepoint(connection, name, 'savepoint')
  }

  rollbackToSavepoint(
    connection: DatabaseConnection,
    name: string,
    _compile: QueryCompiler['compileQuery'],
  ): Promise<void> {
    return this.#router.savepoint(connection, name, 'rollbackToSavepoint')
  }

  releaseSavepoint(
    connection: DatabaseConnection,
    name: string,
    _compile: QueryCompiler['compileQuery'],
  ): Promise<void> {
    return this.#router.savepoint(connection, name, 'releaseSavepoint')
  }

  async releaseConnection(): Promise<void> {}

  destroy(): Promise<void> {
    return this.#router.close()
  }
}
