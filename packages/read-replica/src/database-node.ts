import type { PostgresCursorConstructor, PostgresPool, PostgresPoolClient, QueryResult } from 'kysely'
import { withTimeout } from './connection-errors.js'
import { ConnectFailedError, QueryTimeoutError } from './errors.js'
import { abandonedError, PgConnection, type PoolClientLike } from './pg-connection.js'

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

export function isNodeConfig(input: NodeInput): input is NodeConfig {
  return typeof (input as NodeConfig).pool === 'object' && (input as NodeConfig).pool !== null
}

/** A configured host: its pool, its running replica reads, counters. */
export class DatabaseNode {
  readonly name: string
  readonly weight: number
  readonly #pool: PoolLike
  readonly #cursor: PostgresCursorConstructor | undefined
  readonly #connectTimeoutMs: number
  /** pg's pool bounds its own connects (connectionTimeoutMillis); otherwise the router does */
  readonly #poolBoundsConnects: boolean
  /** connections running a statement that may be cut off when the node is excluded */
  readonly #abandonable = new Set<PgConnection>()
  /** connects that give up when the node is excluded */
  readonly #pendingConnects = new Set<(error: unknown) => void>()
  /** queries in flight; read by least-outstanding / p2c balancing */
  outstanding = 0
  /** the last timed statement (check, or read with replicaReadTimeoutMs) timed out */
  #unresponsive = false

  constructor(
    input: NodeInput,
    defaultName: string,
    cursor: PostgresCursorConstructor | undefined,
    connectTimeoutMs = 0,
  ) {
    const config: NodeConfig = isNodeConfig(input) ? input : { pool: input }
    this.name = config.name ?? defaultName
    this.weight = config.weight ?? 1
    this.#pool = config.pool
    this.#cursor = cursor
    this.#connectTimeoutMs = connectTimeoutMs
    this.#poolBoundsConnects = boundConnects(config.pool, connectTimeoutMs)
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

  /**
   * A pooled connection, within connectTimeoutMs. A failure here means nothing was sent: the
   * error is wrapped in {@link ConnectFailedError} so callers can tell it from a failed statement.
   * An `abandonable` connect is given up at once when the node is excluded meanwhile.
   */
  acquire(abandonable = false): Promise<PgConnection> {
    const connecting =
      this.#poolBoundsConnects || this.#connectTimeoutMs === 0
        ? this.#pool.connect()
        : connectWithin(this.#pool, this.#connectTimeoutMs, this.name)
    if (!abandonable) {
      return connecting.then(
        (client) => new PgConnection(client as PoolClientLike, this.#cursor),
        (error: unknown) => {
          throw new ConnectFailedError(this.name, error)
        },
      )
    }
    return new Promise<PgConnection>((resolve, reject) => {
      let done = false
      const giveUp = (error: unknown) => {
        if (done) return
        done = true
        this.#pendingConnects.delete(giveUp)
        reject(new ConnectFailedError(this.name, error))
      }
      this.#pendingConnects.add(giveUp)
      connecting.then((client) => {
        if (done) return (client as PoolClientLike).release() // arrived after we gave up
        done = true
        this.#pendingConnects.delete(giveUp)
        resolve(new PgConnection(client as PoolClientLike, this.#cursor))
      }, giveUp)
    })
  }

  /** From now until {@link endAbandonable}, excluding the node cuts `connection`'s statement off. */
  startAbandonable(connection: PgConnection): void {
    this.#abandonable.add(connection)
  }

  endAbandonable(connection: PgConnection): void {
    this.#abandonable.delete(connection)
  }

  /** Cuts off every abandonable statement running on this node (it was just excluded). */
  abandonRunning(): void {
    for (const giveUp of this.#pendingConnects) {
      giveUp(abandonedError(`${this.name} was excluded while connecting`, 'excluded'))
    }
    for (const connection of this.#abandonable) {
      connection.abandon(abandonedError(`${this.name} was excluded while the statement ran`, 'excluded'))
    }
  }

  /** A statement timed out here: destroy() must not wait for this node's clients. */
  markUnresponsive(): void {
    this.#unresponsive = true
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
        // the caller already has its timeout error; this one only ends the late attempt
        throw new QueryTimeoutError({ node: this.name, timeoutMs, write: false, what })
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
    const ended = this.#pool.end()
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

// pg's Pool reads options.connectionTimeoutMillis on every connect, and on expiry destroys the
// half-open client itself: the clean way to bound connects. Set only when the user left it unset.
function boundConnects(pool: PoolLike, ms: number): boolean {
  const options = (pool as { options?: { connectionTimeoutMillis?: unknown } }).options
  if (options === null || typeof options !== 'object') return false
  if (typeof options.connectionTimeoutMillis === 'number' && options.connectionTimeoutMillis > 0) return true
  if (ms <= 0) return false
  options.connectionTimeoutMillis = ms
  return true
}

// A pool without that option: race the connect; a client that arrives late goes back at once.
function connectWithin(pool: PoolLike, ms: number, name: string): Promise<PostgresPoolClient> {
  let late = false
  const connecting = pool.connect()
  connecting.then(
    (client) => {
      if (late) (client as PoolClientLike).release()
    },
    () => {},
  )
  return withTimeout(connecting, ms, `connect to ${name}`, () => {
    late = true
  })
}
