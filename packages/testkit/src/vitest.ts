/**
 * Vitest helpers over the kit's servers: each starts what a test file needs in `beforeAll` and
 * stops it in `afterAll`. A separate entry (`@scale/testkit/vitest`) so the main entry, which
 * benches and the demo import, never loads Vitest.
 *
 * Call them at the top of a file or `describe` block, before that block's own hooks: Vitest runs
 * `afterAll` hooks in reverse order, so the file's own cleanup (closing its pools and clients)
 * runs before the server it talks to is stopped.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import { TestkitError } from './errors.js'
import {
  type PostgresCluster,
  type PostgresNode,
  type StartPostgresOptions,
  startPostgres,
  startPostgresClusters,
} from './postgres.js'
import { type RedisServer, type StartRedisOptions, startRedis } from './redis.js'

export { uniqueName } from './unique-name.js'

/** A client the helper can close after the file's tests: ioredis 5 and 6, `Cluster`, … */
export interface DisconnectableClient {
  disconnect(): void
}

export interface UseRedisOptions<Client extends DisconnectableClient> extends StartRedisOptions {
  /**
   * Makes the client the tests get (e.g. one with `maxRetriesPerRequest: null` for BullMQ workers,
   * or an ioredis 6 one). It must swallow `'error'` events itself.
   * @default an ioredis 5 client on loopback that fails fast (`maxRetriesPerRequest: 1`) and ignores `'error'` events
   */
  connect?: (server: RedisServer) => Client
}

/** A test file's Redis; read its fields inside tests or hooks, after the helper's `beforeAll`. */
export interface TestRedis<Client extends DisconnectableClient = Redis> {
  /** The testkit server (kill, pause, command counts, port). */
  readonly server: RedisServer
  /** A client to it, made by `connect`. */
  readonly redis: Client
}

/** An ioredis client that fails fast in tests instead of retrying for seconds. */
export function connectRedis(server: RedisServer): Redis {
  const redis = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  return redis
}

/**
 * Starts a `redis-server` on a free loopback port for the calling file or `describe` block, with a
 * client to it; disconnects the client and disposes of the server afterwards.
 *
 * @example
 * ```ts fragment
 * const env = useRedis()
 * it('counts', async () => {
 *   await env.redis.incr(uniqueName('t'))
 *   expect((await env.server.commandCounts()).incr).toBe(1)
 * })
 * ```
 */
export function useRedis(options?: StartRedisOptions): TestRedis<Redis>
export function useRedis<Client extends DisconnectableClient>(
  options: UseRedisOptions<Client> & { connect: (server: RedisServer) => Client },
): TestRedis<Client>
export function useRedis(
  options: UseRedisOptions<DisconnectableClient> = {},
): TestRedis<DisconnectableClient> {
  const { connect = connectRedis, ...start } = options
  let server: RedisServer | undefined
  let redis: DisconnectableClient | undefined
  beforeAll(async () => {
    server = await startRedis(start)
    redis = connect(server)
  })
  afterAll(async () => {
    redis?.disconnect()
    await server?.dispose()
  })
  return {
    get server() {
      return started('useRedis', 'server', server)
    },
    get redis() {
      return started('useRedis', 'redis', redis)
    },
  }
}

/** A test file's Postgres cluster; read its fields inside tests or hooks, after the helper's `beforeAll`. */
export interface TestPostgres {
  readonly cluster: PostgresCluster
  readonly primary: PostgresNode
  readonly replicas: readonly PostgresNode[]
}

/**
 * Starts a Postgres primary (and `replicas` streaming replicas) for the calling file or `describe`
 * block; stops every node afterwards.
 *
 * @example
 * ```ts fragment
 * const pg = usePostgres({ replicas: 2 })
 * beforeAll(async () => {
 *   await pg.primary.query('create table item (id int)')
 *   await pg.cluster.waitForReplication()
 * })
 * ```
 */
export function usePostgres(options: StartPostgresOptions = {}): TestPostgres {
  let cluster: PostgresCluster | undefined
  beforeAll(async () => {
    cluster = await startPostgres(options)
  })
  afterAll(async () => {
    await cluster?.stop()
  })
  const current = () => started('usePostgres', 'cluster', cluster)
  return {
    get cluster() {
      return current()
    },
    get primary() {
      return current().primary
    },
    get replicas() {
      return current().replicas
    },
  }
}

/**
 * Starts `count` independent Postgres clusters (shards) for the calling file or `describe` block;
 * stops them all afterwards. The returned array is filled in `beforeAll`.
 */
export function usePostgresClusters(
  count: number,
  options: Omit<StartPostgresOptions, 'replicas'> = {},
): readonly PostgresCluster[] {
  const clusters: PostgresCluster[] = []
  beforeAll(async () => {
    clusters.push(...(await startPostgresClusters(count, options)))
  })
  afterAll(async () => {
    await Promise.all(clusters.map((cluster) => cluster.stop()))
  })
  return clusters
}

function started<T>(helper: string, field: string, value: T | undefined): T {
  if (value === undefined) {
    throw new TestkitError(
      'E_TESTKIT_NOT_STARTED',
      `${helper}().${field} is set in beforeAll: read it inside a test or a later hook`,
    )
  }
  return value
}
