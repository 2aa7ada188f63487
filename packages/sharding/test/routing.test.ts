import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createReplicatedKysely } from '@scale/read-replica'
import type { PostgresCluster } from '@scale/testkit'
import { uniqueName, usePostgres, usePostgresClusters } from '@scale/testkit/vitest'
import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createShardedKysely,
  createShardMap,
  fileMapStore,
  InvalidShardKeyError,
  postgresMapStore,
  ShardingClosedError,
  ShardKeyMissingError,
  ShardMapStaleError,
  UnknownShardError,
} from '../src/index.js'
import { installShard } from '../src/shard-sql.js'
import { type Database, kysely, pool, USERS_SCHEMA, waitUntil } from './helpers.js'

const NAMES = ['s1', 's2', 's3', 's4']

describe('routing over four real clusters', () => {
  const plain = usePostgresClusters(3)
  const withReplica = usePostgres({ replicas: 1 })
  let replicated: PostgresCluster
  let clusters: PostgresCluster[] = []
  const direct: Kysely<Database>[] = []

  // s1..s3 plain clusters, s4 a primary with a streaming replica (used through @scale/read-replica).
  const shards = (): Record<string, Kysely<Database>> => ({
    s1: kysely(clusters[0]!.primary),
    s2: kysely(clusters[1]!.primary),
    s3: kysely(clusters[2]!.primary),
    s4: createReplicatedKysely<Database>({
      primary: { pool: pool(replicated.primary), name: 'primary' },
      replicas: [{ pool: pool(replicated.replicas[0]!), name: 'replica' }],
      readYourWrites: false,
      monitorIntervalMs: 100,
    }),
  })

  beforeAll(async () => {
    replicated = withReplica.cluster
    clusters = [...plain, replicated]
    for (const cluster of clusters) {
      await cluster.primary.query(USERS_SCHEMA)
      direct.push(kysely(cluster.primary))
    }
    await replicated.waitForReplication()
  })

  afterAll(async () => {
    await Promise.all(direct.map((db) => db.destroy()))
  })

  const rowsOn = async (index: number) =>
    (await direct[index]!.selectFrom('users').select(['id', 'name']).execute()).map((row) => row.id)

  it('puts every row inserted through the router on the shard the map names', async () => {
    const map = createShardMap({ shards: NAMES })
    const warnings: string[] = []
    const db = await createShardedKysely<Database>({
      shards: shards(),
      map,
      // A metrics hook that throws must not break a query: logged once, then ignored.
      metrics: {
        increment() {
          throw new Error('metrics backend down')
        },
      },
      logger: { info() {}, error() {}, warn: (_, message) => warnings.push(message) },
    })
    try {
      for (let id = 1; id <= 400; id++) {
        await db
          .forKey(id)
          .insertInto('users')
          .values({ id: String(id), name: `user ${id}`, bucket_hint: null })
          .execute()
      }
      let total = 0
      for (const [index, name] of NAMES.entries()) {
        const ids = await rowsOn(index)
        total += ids.length
        expect(ids.length).toBeGreaterThan(50)
        for (const id of ids) expect(map.shardOf(id)).toBe(name)
      }
      expect(total).toBe(400)
      const row = await db
        .forKey(123)
        .selectFrom('users')
        .selectAll()
        .where('id', '=', '123')
        .executeTakeFirst()
      expect(row?.name).toBe('user 123')
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatch(/metrics hook threw/)
    } finally {
      await db.close()
      for (const d of direct) await d.deleteFrom('users').execute()
    }
  })

  it('pins a hot key to a bucket and a shard of its own', async () => {
    const map = createShardMap({ shards: ['s1', 's2', 's3'], hotKeys: [{ key: 777, shard: 's4' }] })
    const db = await createShardedKysely<Database>({ shards: shards(), map })
    try {
      for (let id = 700; id < 800; id++) {
        await db
          .forKey(id)
          .insertInto('users')
          .values({ id: String(id), name: 'x', bucket_hint: null })
          .execute()
      }
      expect(await rowsOn(3)).toEqual(['777'])
      expect(db.bucketOf(777)).toBe(1024)
      expect(map.bucketsOf('s4')).toEqual([1024])
      const rest = [...(await rowsOn(0)), ...(await rowsOn(1)), ...(await rowsOn(2))]
      expect(rest).toHaveLength(99)
    } finally {
      await db.close()
      for (const d of direct) await d.deleteFrom('users').execute()
    }
  })

  it('sends reads of a replicated shard to its replica', async () => {
    const map = createShardMap({ shards: NAMES })
    const db = await createShardedKysely<Database>({ shards: shards(), map })
    try {
      const key = Array.from({ length: 1000 }, (_, i) => i + 1).find((k) => map.shardOf(k) === 's4') as number
      await db
        .forKey(key)
        .insertInto('users')
        .values({ id: String(key), name: 'on s4', bucket_hint: null })
        .execute()
      await replicated.waitForReplication()
      const readPort = async () => {
        const row = await db
          .forKey(key)
          .selectFrom('users')
          .select(['name', sql<number>`inet_server_port()`.as('port')])
          .where('id', '=', String(key))
          .executeTakeFirstOrThrow()
        expect(row.name).toBe('on s4')
        return row.port
      }
      // The replica serves reads once its monitor has seen it healthy (the primary until then).
      await waitUntil(
        'a read served by the replica of s4',
        async () => (await readPort()) === replicated.replicas[0]!.port,
      )
      const ports = new Set<number>()
      for (let i = 0; i < 10; i++) ports.add(await readPort())
      expect(ports.has(replicated.replicas[0]!.port)).toBe(true)
      const written = await db
        .forKey(key)
        .updateTable('users')
        .set({ name: 'updated' })
        .where('id', '=', String(key))
        .returning(sql<number>`inet_server_port()`.as('port'))
        .executeTakeFirstOrThrow()
      expect(written.port).toBe(replicated.primary.port)
    } finally {
      await db.close()
      for (const d of direct) await d.deleteFrom('users').execute()
    }
  })

  it('splits IN lists per shard with forKeys', async () => {
    const map = createShardMap({ shards: NAMES })
    const db = await createShardedKysely<Database>({ shards: shards(), map })
    try {
      const keys = Array.from({ length: 100 }, (_, i) => i + 1000)
      for (const key of keys) {
        await db
          .forKey(key)
          .insertInto('users')
          .values({ id: String(key), name: `n${key}`, bucket_hint: null })
          .execute()
      }
      const batch = db.forKeys(keys)
      expect(batch.groups.reduce((sum, group) => sum + group.keys.length, 0)).toBe(100)
      for (const group of batch.groups)
        for (const key of group.keys) expect(map.shardOf(key)).toBe(group.shard)
      const rows = await batch.execute((shard, ids) =>
        shard.selectFrom('users').select(['id', 'name']).where('id', 'in', ids.map(String)).execute(),
      )
      expect(rows.map((row) => Number(row.id)).sort((a, b) => a - b)).toEqual(keys)
    } finally {
      await db.close()
      for (const d of direct) await d.deleteFrom('users').execute()
    }
  })

  it('refuses bad keys before any query, and calls after close()', async () => {
    const map = createShardMap({ shards: NAMES })
    const db = await createShardedKysely<Database>({ shards: shards(), map })
    const before = await clusters[0]!.primary.query<{ n: string }>(
      "select xact_commit::text as n from pg_stat_database where datname = 'postgres'",
    )
    for (const bad of [Number.NaN, '', {}, 1.5, [1]]) {
      expect(() => db.forKey(bad as never)).toThrow(InvalidShardKeyError)
    }
    expect(() => db.forKey(undefined as never)).toThrow(ShardKeyMissingError)
    expect(() => db.forKeys([1, Number.NaN])).toThrow(InvalidShardKeyError)
    await expect(db.transactionForKey('' as never, async () => 1)).rejects.toThrow(InvalidShardKeyError)
    expect(() => db.shard('nope')).toThrow(UnknownShardError)
    await db.close()
    await db.close()
    expect(() => db.forKey(1)).toThrow(ShardingClosedError)
    const after = await clusters[0]!.primary.query<{ n: string }>(
      "select xact_commit::text as n from pg_stat_database where datname = 'postgres'",
    )
    // Only our two stat queries ran on s1 (each a transaction of its own).
    expect(Number(after[0]!.n) - Number(before[0]!.n)).toBeLessThanOrEqual(2)
  })

  it('refuses a map that names a shard it was not given', async () => {
    const map = createShardMap({ shards: ['s1', 's9'] })
    await expect(
      createShardedKysely<Database>({ shards: { s1: kysely(clusters[0]!.primary) }, map }),
    ).rejects.toThrow(UnknownShardError)
  })

  it('picks up a new epoch from the control table without restart (NOTIFY and polling)', async () => {
    const control = kysely(clusters[0]!.primary)
    const table = uniqueName('map_')
    const store = postgresMapStore({
      db: control,
      table,
      listen: async () => {
        const client = new pg.Client(clusters[0]!.primary.connection)
        client.on('error', () => {})
        await client.connect()
        return client
      },
    })
    const first = createShardMap({ shards: NAMES })
    await store.save(first)
    await expect(store.save(first)).rejects.toThrow(ShardMapStaleError)
    const listening = await createShardedKysely<Database>({
      shards: shards(),
      map: store,
      refreshIntervalMs: 0,
    })
    const polling = await createShardedKysely<Database>({
      shards: shards(),
      map: postgresMapStore({ db: control, table }),
      refreshIntervalMs: 50,
    })
    try {
      expect(listening.map.epoch).toBe(1)
      const moved = first.withBucketOn(0, 's4')
      await store.save(moved)
      await waitUntil('the listening router to adopt epoch 2', () => listening.map.epoch === 2)
      await waitUntil('the polling router to adopt epoch 2', () => polling.map.epoch === 2)
      expect(listening.map.shardOfBucket(0)).toBe('s4')
    } finally {
      await listening.close()
      await polling.close()
      await sql.raw(`drop table ${table}`).execute(control)
      await control.destroy()
    }
  })

  it('keeps the map in a file too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shard-map-'))
    try {
      const store = fileMapStore(join(dir, 'map.json'))
      expect(await store.load()).toBeUndefined()
      const map = createShardMap({ shards: NAMES })
      await store.save(map)
      await expect(store.save(map)).rejects.toThrow(ShardMapStaleError)
      const db = await createShardedKysely<Database>({ shards: shards(), map: store, refreshIntervalMs: 20 })
      await store.save(map.withBucketOn(5, 's1'))
      await waitUntil('the router to read epoch 2 from the file', () => db.map.epoch === 2)
      await db.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('hashes keys in SQL exactly as in TypeScript (the mover and the guard trigger rely on it)', async () => {
    const map = createShardMap({ shards: NAMES, hotKeys: [{ key: 'celebrity', shard: 's4' }] })
    await installShard(direct[0]!, map, [{ name: 'users', shardKey: 'id', primaryKey: 'id' }])
    const keys = [
      ...Array.from({ length: 500 }, (_, i) => String(i * 7919)),
      'celebrity',
      'héllo wörld',
      '😀🎉',
      '9223372036854775807',
      '-12',
      'a'.repeat(300),
    ]
    const { rows } = await sql<{
      bucket: number
    }>`select scale_shard_bucket(k, 1024) as bucket from unnest(${keys}::text[]) with ordinality as u(k, n) order by n`.execute(
      direct[0]!,
    )
    expect(rows.map((row) => row.bucket)).toEqual(keys.map((key) => map.bucketOf(key)))
  })
})
