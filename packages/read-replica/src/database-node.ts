import {
  CompiledQuery,
  type DatabaseConnection,
  type PostgresCursorConstructor,
  PostgresDriver,
  type PostgresPool,
} from 'kysely'

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

  /** Runs one raw statement on a pooled connection and returns its rows. */
  async query<Row>(sql: string): Promise<Row[]> {
    const connection = await this.acquire()
    try {
      const result = await connection.executeQuery<Row>(CompiledQuery.raw(sql))
      return result.rows
    } finally {
      await this.release(connection)
    }
  }

  async destroy(): Promise<void> {
    if (this.#initialized) await this.driver.destroy()
    else await this.#pool.end()
  }
}
