import {
  type DatabaseConnection,
  type PostgresCursorConstructor,
  PostgresDriver,
  type PostgresPool,
  type PostgresPoolClient,
  type QueryResult,
} from 'kysely'
import { withTimeout } from './connection-errors.js'

/**
 * The subset of `pg.Pool` this package uses (Kysely's own structural `PostgresPool`), plus the
 * optional `on()`: pg emits `'error'` on a pool or a client whose server died, and an `'error'`
 * event nobody listens to crashes Node. The router listens on the pool and on every client.
 */
export interface PoolLike extends PostgresPool {
  on?(event: 'error' | 'connect', listener: (value: unknown) => void): unknown
}

interface ClientLike {
  on?(event: 'error', listener: (error: Error) => void): unknown
}

// Kysely reports numAffectedRows for these (PostgresConnection does the same).
const WRITE_COMMANDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE'])

/** One PostgreSQL host: a pool, or a pool with a name and a balancing weight. */
export interface NodeConfig {
  /** the user's `pg.Pool` (or anything shaped like it) for this host */
  pool: PoolLike
  /**
   * Name used in routing events, metrics and errors.
   * @default 'primary' / 'primary-2' … and 'replica-1', 'replica-2' …
   */
  name?: string
  /**
   * Relative share of reads under `balance: 'weighted'`.
   * @default 1
   */
  weight?: number
}

export type NodeInput = PoolLike | NodeConfig

/** Kysely's PostgresDriver types its methods with its own connection class; ours are those. */
export type DriverConnection = Parameters<PostgresDriver['releaseConnection']>[0]

export function isNodeConfig(input: NodeInput): input is NodeConfig {
  return typeof (input as NodeConfig).pool === 'object' && (input as NodeConfig).pool !== null
}

/** A configured host: its Kysely driver (pooled connections) and counters. */
export class DatabaseNode {
  readonly name: string
  readonly weight: number
  readonly driver: PostgresDriver
  readonly #pool: PoolLike
  /** queries in flight; read by least-outstanding / p2c balancing */
  outstanding = 0
  #initialized: Promise<void> | undefined
  #ready = false
  /** the last timed statement (check, or read with replicaReadTimeoutMs) timed out */
  #unresponsive = false

  constructor(input: NodeInput, defaultName: string, cursor: PostgresCursorConstructor | undefined) {
    const config: NodeConfig = isNodeConfig(input) ? input : { pool: input }
    this.name = config.name ?? defaultName
    this.weight = config.weight ?? 1
    this.#pool = config.pool
    this.driver = new PostgresDriver(cursor ? { pool: config.pool, cursor } : { pool: config.pool })
  }

  get pool(): PoolLike {
    return this.#pool
  }

  /** Attaches the idle-client error listener; `onError` lets the monitor react. */
  watchPoolErrors(onError: (error: Error) => void): void {
    if (typeof this.#pool.on !== 'function') return
    this.#pool.on('error', (error) => onError(error as Error))
    // A checked-out client between two queries has no pool listener: when its server is killed
    // the FATAL message would be an uncaught 'error'. The failed query itself still rejects.
    this.#pool.on('connect', (value) => {
      const client = value as ClientLike | undefined
      if (typeof client?.on === 'function') client.on('error', onError)
    })
  }

  acquire(): Promise<DatabaseConnection> {
    if (this.#ready) return this.driver.acquireConnection()
    this.#initialized ??= this.driver.init().then(() => {
      this.#ready = true
    })
    return this.#initialized.then(() => this.driver.acquireConnection())
  }

  async release(connection: DatabaseConnection): Promise<void> {
    await this.driver.releaseConnection(connection as DriverConnection)
  }

  /**
   * Runs one statement on a pooled client of its own and gives up after `timeoutMs`. On timeout
   * the client is destroyed at once (pg closes the socket of a client with a query in flight):
   * a frozen server never keeps pool connections checked out, so checks cannot exhaust the pool
   * and `destroy()` (pool.end() waits for every checked-out client) never waits for it.
   */
  queryWithin<R>(
    sql: string,
    parameters: readonly unknown[],
    timeoutMs: number,
    what: string,
  ): Promise<QueryResult<R>> {
    let timedOut = false
    let client: PostgresPoolClient | undefined
    const run = (async (): Promise<QueryResult<R>> => {
      const connected = await this.#pool.connect()
      if (timedOut) {
        connected.release(true)
        throw new Error(`${what}: connected after the timeout`)
      }
      client = connected
      try {
        const { command, rowCount, rows } = await connected.query<R>(sql, parameters)
        const result: QueryResult<R> = { rows: rows ?? [] }
        return WRITE_COMMANDS.has(command) ? { ...result, numAffectedRows: BigInt(rowCount) } : result
      } finally {
        if (!timedOut) connected.release()
      }
    })()
    return withTimeout(run, timeoutMs, what, () => {
      timedOut = true
      this.#unresponsive = true
      client?.release(true)
    }).then((result) => {
      this.#unresponsive = false
      return result
    })
  }

  /**
   * Ends the pool. pool.end() waits for every client that is checked out or still connecting;
   * on a server that stopped answering (its last timed statement timed out) that is forever, and
   * pg has no public way to abort a pending connect. So for such a node, clients still there
   * after `graceMs` have their sockets closed.
   */
  async destroy(graceMs: number): Promise<void> {
    const ended = this.#initialized ? this.driver.destroy() : this.#pool.end()
    if (!this.#unresponsive) return ended
    let timer: NodeJS.Timeout | undefined
    const graceOver = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), graceMs)
      timer.unref()
    })
    const stuck = await Promise.race([ended.then(() => false), graceOver])
    clearTimeout(timer)
    if (!stuck) return
    const clients = (this.#pool as { _clients?: unknown })._clients // pg-pool internal, hence the guards
    for (const client of Array.isArray(clients) ? clients : []) {
      ;(client as { connection?: { stream?: { destroy?(): void } } }).connection?.stream?.destroy?.()
    }
    await ended
  }
}
