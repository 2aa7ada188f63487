import { appendFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import { postgresBinary } from './binaries.js'
import { freePort } from './free-port.js'
import { ManagedServer } from './managed-server.js'
import { BASE_SETTINGS, type PostgresSettings, renderSettings } from './postgres-settings.js'
import { runCommand } from './run-command.js'
import { startWithOneRetry } from './start-retry.js'
import { makeTempDir, removeTempDir } from './temp-dir.js'
import { postgresRunAs, type RunAs } from './unprivileged-user.js'
import { waitFor } from './wait.js'

export type { PostgresSettings }

export interface StartPostgresOptions {
  /**
   * Number of streaming replicas (made with `pg_basebackup -R`).
   * @default 0
   */
  replicas?: number
  /** Extra `postgresql.conf` settings for every node, e.g. `{ max_connections: 300 }`. */
  settings?: PostgresSettings
}

/**
 * One PostgreSQL server of a test cluster: the primary or a streaming replica. Its polite `stop()`
 * is a fast shutdown (SIGINT): clients are disconnected, then it exits cleanly.
 */
export class PostgresNode extends ManagedServer {
  readonly name: string
  readonly user = 'postgres'
  readonly database = 'postgres'
  readonly dataDir: string

  constructor(name: string, port: number, dataDir: string, runAs: RunAs | undefined) {
    super({
      port,
      what: `${name} on port ${port}`,
      stopSignal: 'SIGINT',
      readyTimeoutMs: 60_000,
      process: {
        command: postgresBinary('postgres'),
        args: ['-D', dataDir],
        logFile: `${dataDir}.log`,
        uid: runAs?.uid,
        gid: runAs?.gid,
      },
    })
    this.name = name
    this.dataDir = dataDir
  }

  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust auth). */
  get url(): string {
    return `postgres://${this.user}@${this.host}:${this.port}/${this.database}`
  }

  /** Options for `new pg.Pool(...)` / `new pg.Client(...)`. */
  get connection(): { host: string; port: number; user: string; database: string } {
    return { host: this.host, port: this.port, user: this.user, database: this.database }
  }

  protected answers(): Promise<boolean> {
    return this.query('select 1').then(() => true)
  }

  /** Runs one statement on a fresh connection and returns its rows. */
  async query<Row = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<Row[]> {
    const client = new pg.Client({ ...this.connection, connectionTimeoutMillis: 5_000 })
    client.on('error', () => {}) // a server killed mid-query must not crash the test process
    await client.connect()
    try {
      const result = await client.query(text, params)
      return result.rows as Row[]
    } finally {
      await client.end().catch(() => {})
    }
  }

  async isInRecovery(): Promise<boolean> {
    const [row] = await this.query<{ recovery: boolean }>('select pg_is_in_recovery() as recovery')
    return row?.recovery === true
  }

  /**
   * Sets `recovery_min_apply_delay` on this replica (0 removes it) and waits until it is in force:
   * the replica then applies each commit no earlier than `ms` after the primary made it.
   */
  async setApplyDelay(ms: number): Promise<void> {
    await this.query(`alter system set recovery_min_apply_delay = '${Math.max(0, Math.floor(ms))}ms'`)
    await this.query('select pg_reload_conf()')
    await waitFor(`${this.name} to apply recovery_min_apply_delay`, async () => {
      const [row] = await this.query<{ setting: string }>(
        `select setting from pg_settings where name = 'recovery_min_apply_delay'`,
      )
      return row?.setting === String(Math.max(0, Math.floor(ms)))
    })
  }

  /** Promotes this replica to a primary and waits until it accepts writes. */
  async promote(): Promise<void> {
    await this.query('select pg_promote(true, 60)')
    await waitFor(`${this.name} to leave recovery`, async () => !(await this.isInRecovery()))
  }

  /** The current WAL LSN on a primary, or the replay LSN on a replica. */
  async lsn(): Promise<string> {
    const [row] = await this.query<{ lsn: string }>(
      'select (case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end)::text as lsn',
    )
    return row?.lsn ?? '0/0'
  }
}

/** A primary and its streaming replicas, all in one temp dir. */
export class PostgresCluster {
  readonly primary: PostgresNode
  readonly replicas: readonly PostgresNode[]
  readonly #dir: string

  constructor(dir: string, primary: PostgresNode, replicas: PostgresNode[]) {
    this.#dir = dir
    this.primary = primary
    this.replicas = replicas
  }

  get nodes(): readonly PostgresNode[] {
    return [this.primary, ...this.replicas]
  }

  /** Waits until every running replica has replayed everything the primary has written so far. */
  async waitForReplication(timeoutMs = 30_000): Promise<void> {
    const [row] = await this.primary.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')
    const target = row?.lsn ?? '0/0'
    await Promise.all(
      this.replicas
        .filter((replica) => replica.running)
        .map((replica) =>
          waitFor(
            `${replica.name} to replay up to ${target}`,
            async () => {
              const [r] = await replica.query<{ caught_up: boolean }>(
                'select pg_last_wal_replay_lsn() >= $1::pg_lsn as caught_up',
                [target],
              )
              return r?.caught_up === true
            },
            { timeoutMs },
          ),
        ),
    )
  }

  /** Stops every node and removes the data. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()))
    await removeTempDir(this.#dir)
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }
}

async function createPrimary(
  dir: string,
  runAs: RunAs | undefined,
  settings: PostgresSettings,
): Promise<PostgresNode> {
  const dataDir = join(dir, 'primary')
  await runCommand(
    postgresBinary('initdb'),
    ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'],
    runAs,
  )
  const port = await freePort()
  await appendFile(
    join(dataDir, 'postgresql.conf'),
    renderSettings({ ...BASE_SETTINGS, ...settings, port, unix_socket_directories: dataDir }),
  )
  const node = new PostgresNode('primary', port, dataDir, runAs)
  await node.start()
  return node
}

async function createReplica(
  dir: string,
  index: number,
  primary: PostgresNode,
  runAs: RunAs | undefined,
  settings: PostgresSettings,
): Promise<PostgresNode> {
  const name = `replica-${index + 1}`
  const dataDir = join(dir, name)
  // -R writes standby.signal and primary_conninfo; -X stream copies the WAL needed to start.
  await runCommand(
    postgresBinary('pg_basebackup'),
    [
      '-h',
      primary.host,
      '-p',
      String(primary.port),
      '-U',
      'postgres',
      '-D',
      dataDir,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
      '--no-sync',
    ],
    runAs,
  )
  const port = await freePort()
  // Settings appended last win over the copy of the primary's.
  await appendFile(
    join(dataDir, 'postgresql.conf'),
    renderSettings({ ...BASE_SETTINGS, ...settings, port, unix_socket_directories: dataDir }),
  )
  const node = new PostgresNode(name, port, dataDir, runAs)
  await node.start()
  return node
}

/**
 * Starts a PostgreSQL primary with `replicas` streaming replicas in a temp dir, each on a free
 * loopback port. Never touches the machine's own server on 5432.
 *
 * @example
 * ```ts
 * const cluster = await startPostgres({ replicas: 2 })
 * await cluster.primary.query('create table t (id int)')
 * await cluster.waitForReplication()
 * await cluster.replicas[0].setApplyDelay(1_000)
 * await cluster.stop()
 * ```
 */
export function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresCluster> {
  return startWithOneRetry(() => startPostgresOnce(options))
}

async function startPostgresOnce(options: StartPostgresOptions): Promise<PostgresCluster> {
  const runAs = postgresRunAs()
  const dir = await makeTempDir('pg', runAs)
  const settings = options.settings ?? {}
  const nodes: PostgresNode[] = []
  try {
    const primary = await createPrimary(dir, runAs, settings)
    nodes.push(primary)
    const replicas: PostgresNode[] = []
    for (let index = 0; index < (options.replicas ?? 0); index++) {
      const replica = await createReplica(dir, index, primary, runAs, settings)
      nodes.push(replica)
      replicas.push(replica)
    }
    return new PostgresCluster(dir, primary, replicas)
  } catch (error) {
    await Promise.all(nodes.map((node) => node.kill()))
    await removeTempDir(dir)
    throw error
  }
}

/** Starts `count` independent PostgreSQL servers (e.g. one per shard). */
export async function startPostgresClusters(
  count: number,
  options: StartPostgresOptions = {},
): Promise<PostgresCluster[]> {
  const clusters: PostgresCluster[] = []
  try {
    for (let index = 0; index < count; index++) clusters.push(await startPostgres(options))
    return clusters
  } catch (error) {
    await Promise.all(clusters.map((cluster) => cluster.stop()))
    throw error
  }
}
