import { fileURLToPath } from 'node:url'
import {
  createShardMap,
  createShardMover,
  postgresMapStore,
  type ShardMap,
  type ShardMapStore,
  type ShardMover,
} from '@scale/sharding'
import { type PostgresCluster, startPostgres } from '@scale/testkit'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import type { Topology } from '../topology/topology.js'
import { WebServer } from '../topology/web-server.js'
import {
  createShardTables,
  SHARDED_TABLES,
  type ShardDatabase,
  type ShardedAppConfig,
} from './shard-schema.js'

const ENTRY = fileURLToPath(new URL('./sharded-web-process.ts', import.meta.url))

/**
 * 32 buckets (the package's default is 1,024): enough to even out 5 shards (±1 bucket), few enough
 * that moving a fifth of them one by one fits a demo phase.
 */
export const BUCKETS = 32
/** Routers reload a map older than this before routing; the mover's clean-up waits longer. */
const MAX_MAP_AGE_MS = 1_000
const CLEANUP_DELAY_MS = 1_500

export interface ShardTierOptions {
  /** The shards users start on; `extra` joins during the move. */
  shards: string[]
  extra: string
  /** The celebrity's own shard. */
  hot: string
  celebrity: number
  users: number
  replicas: number
  webServers: number
  logDir: string
  onStep: (step: string) => void
}

/** Every shard's Postgres (+ replica), the control database, the mover and the sharded web servers. */
export interface ShardTier {
  clusters: Record<string, PostgresCluster>
  /** Direct connections to each shard's primary, for counting rows (not through the routers). */
  primaries: Record<string, Kysely<ShardDatabase>>
  store: ShardMapStore
  mover: ShardMover
  web: WebServer[]
  initialMap: ShardMap
}

function kysely<T>(url: string): Kysely<T> {
  const pool = new pg.Pool({ connectionString: url, max: 4 })
  // An idle client whose server the runner stops (teardown, drills) emits 'error'; unheard, that
  // would crash the runner.
  pool.on('error', () => {})
  return new Kysely<T>({ dialect: new PostgresDialect({ pool }) })
}

/**
 * Starts one Postgres cluster per shard (the topology's own database is the control database),
 * creates the tables, installs the mover's triggers, seeds the users where the map puts them and
 * starts the web servers. Everything is handed to `topology` to stop.
 */
export async function startShardTier(topology: Topology, options: ShardTierOptions): Promise<ShardTier> {
  const names = [...options.shards, options.extra, options.hot]
  options.onStep(
    `postgres: ${names.length} shards${options.replicas ? `, each with ${options.replicas} replica` : ''}`,
  )
  const clusters: Record<string, PostgresCluster> = {}
  await Promise.all(
    names.map(async (name) => {
      const cluster = await startPostgres({ replicas: options.replicas })
      clusters[name] = cluster
      topology.adopt(() => cluster.stop())
    }),
  )
  const primaries = Object.fromEntries(
    names.map((name) => [name, kysely<ShardDatabase>((clusters[name] as PostgresCluster).primary.url)]),
  )
  const control = kysely<unknown>(topology.database.primary.url)
  topology.adopt(async () => {
    await Promise.all([...Object.values(primaries), control].map((db) => db.destroy()))
  })
  await Promise.all(Object.values(primaries).map((db) => createShardTables(db)))
  const store = postgresMapStore({ db: control })
  const initialMap = createShardMap({
    shards: options.shards,
    bucketCount: BUCKETS,
    hotKeys: [{ key: options.celebrity, shard: options.hot }],
  })
  await store.save(initialMap)
  const mover = createShardMover({
    control,
    store,
    shards: primaries,
    tables: SHARDED_TABLES,
    cleanupDelayMs: CLEANUP_DELAY_MS,
    // Each chunk scans the source table for the bucket's rows: big chunks, few scans.
    chunkSize: 5_000,
  })
  topology.adopt(() => mover.close())
  await mover.install()

  options.onStep(`seeding ${options.users.toLocaleString('en')} users over ${options.shards.length} shards`)
  const byShard = new Map<string, number[]>()
  for (let id = 1; id <= options.users; id++) {
    const shard = initialMap.shardOf(id)
    const ids = byShard.get(shard)
    if (ids) ids.push(id)
    else byShard.set(shard, [id])
  }
  await Promise.all(
    [...byShard].map(async ([shard, ids]) => {
      await sql`insert into account (id, name) select id, 'user ' || id from unnest(${ids}::bigint[]) as id`.execute(
        primaries[shard] as Kysely<ShardDatabase>,
      )
    }),
  )
  await Promise.all(Object.values(clusters).map((c) => c.waitForReplication(60_000)))

  options.onStep(`${options.webServers} sharded web servers`)
  const config: Omit<ShardedAppConfig, 'name'> = {
    control: topology.database.primary.url,
    shards: Object.fromEntries(
      names.map((name) => {
        const cluster = clusters[name] as PostgresCluster
        const replica = cluster.replicas[0]
        return [name, { primary: cluster.primary.url, ...(replica && { replica: replica.url }) }]
      }),
    ),
    maxMapAgeMs: MAX_MAP_AGE_MS,
  }
  const web = Array.from(
    { length: options.webServers },
    (_, i) => new WebServer({ ...config, name: `shard-web-${i + 1}` }, options.logDir, ENTRY),
  )
  for (const server of web) topology.adopt(() => server.stop())
  await Promise.all(web.map((server) => server.start()))
  return { clusters, primaries, store, mover, web, initialMap }
}
