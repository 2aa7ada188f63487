import type { PostgresCluster } from '@scale/testkit'
import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import {
  createShardedKysely,
  createShardMap,
  postgresMapStore,
  type ShardedKysely,
  type ShardMap,
  type ShardMapStore,
} from '../src/index.js'
import { kysely } from './helpers.js'

export interface ItemsDb {
  items: { id: string; user_id: string; value: number }
}

export const NAMES = ['s1', 's2', 's3', 's4', 's5']
export const TABLES = [{ name: 'items', shardKey: 'user_id', primaryKey: 'id' }]
export const BUCKETS = 16
export const MAP_TABLE = 'reshard_test_map'

interface Truth {
  user_id: string
  value: number
}

/** Five clusters (s1 is also the control database), four in the map, and writers that keep a ledger. */
export class ReshardRig {
  readonly clusters: readonly PostgresCluster[]
  readonly direct: Kysely<ItemsDb>[]
  readonly control: Kysely<ItemsDb>
  store!: ShardMapStore
  router!: ShardedKysely<ItemsDb>
  readonly truth = new Map<string, Truth>()
  counts = { ops: 0, failures: 0, wrongReads: 0, reads: 0 }
  errors: unknown[] = []
  #stop = false
  #writers: Promise<void>[] = []
  #nextId = 1_000_000

  constructor(clusters: readonly PostgresCluster[]) {
    this.clusters = clusters
    this.direct = clusters.map((cluster) => kysely<ItemsDb>(cluster.primary))
    this.control = this.direct[0] as Kysely<ItemsDb>
  }

  shards(): Record<string, Kysely<ItemsDb>> {
    return Object.fromEntries(
      NAMES.map((name, index) => [name, kysely<ItemsDb>(this.clusters[index]!.primary, 8)]),
    )
  }

  /** Fresh tables everywhere, the first map saved, `seed` rows written through a router. */
  async reset(seed: number): Promise<ShardMap> {
    for (const db of this.direct) {
      await sql
        .raw(
          `drop table if exists items, scale_shard_bucket_state, scale_shard_changes, scale_shard_hot_keys, scale_shard_moves, ${MAP_TABLE} cascade;
           create table items (id bigint primary key, user_id bigint not null, value int not null)`,
        )
        .execute(db)
    }
    this.truth.clear()
    this.counts = { ops: 0, failures: 0, wrongReads: 0, reads: 0 }
    this.errors = []
    const cluster = this.clusters[0]!
    this.store = postgresMapStore({
      db: this.control,
      table: MAP_TABLE,
      listen: async () => {
        const client = new pg.Client(cluster.primary.connection)
        client.on('error', () => {})
        await client.connect()
        return client
      },
    })
    const map = createShardMap({ shards: NAMES.slice(0, 4), bucketCount: BUCKETS })
    await this.store.save(map)
    this.router = await createShardedKysely<ItemsDb>({
      shards: this.shards(),
      map: this.store,
      refreshIntervalMs: 200,
      staleRetryMs: 30_000,
    })
    const rows = Array.from({ length: seed }, (_, index) => ({
      id: String(index + 1),
      user_id: String((index % 400) + 1),
      value: index,
    }))
    await this.router.forKeys(rows.map((row) => row.user_id)).execute(async (db, keys) => {
      const mine = rows.filter((row) => keys.includes(row.user_id))
      for (let i = 0; i < mine.length; i += 500)
        await db
          .insertInto('items')
          .values(mine.slice(i, i + 500))
          .execute()
      return []
    })
    for (const row of rows) this.truth.set(row.id, { user_id: row.user_id, value: row.value })
    return map
  }

  /** Inserts through the router and records it once the router says it is done. */
  async insert(userId: string, value: number): Promise<void> {
    const id = String(this.#nextId++)
    await this.router.forKey(userId).insertInto('items').values({ id, user_id: userId, value }).execute()
    this.truth.set(id, { user_id: userId, value })
  }

  async #op(own: string[]): Promise<void> {
    const roll = Math.random()
    const id = own[Math.floor(Math.random() * own.length)]
    const row = id === undefined ? undefined : this.truth.get(id)
    if (roll < 0.4 || !id || !row) {
      const userId = String(1 + Math.floor(Math.random() * 400))
      const before = this.#nextId
      await this.insert(userId, Math.floor(Math.random() * 1e6))
      own.push(String(before))
    } else if (roll < 0.7) {
      const value = Math.floor(Math.random() * 1e6)
      await this.router.forKey(row.user_id).updateTable('items').set({ value }).where('id', '=', id).execute()
      this.truth.set(id, { ...row, value })
    } else if (roll < 0.9) {
      await this.router.forKey(row.user_id).deleteFrom('items').where('id', '=', id).execute()
      this.truth.delete(id)
      own.splice(own.indexOf(id), 1)
    } else {
      const read = await this.router
        .forKey(row.user_id)
        .selectFrom('items')
        .select('value')
        .where('id', '=', id)
        .executeTakeFirst()
      this.counts.reads++
      if (read?.value !== row.value) this.counts.wrongReads++
    }
  }

  /** `count` writers, each on its own rows (so each knows what it must read back). */
  startWriters(count: number): void {
    this.#stop = false
    const seeded = [...this.truth.keys()]
    for (let w = 0; w < count; w++) {
      const own = seeded.filter((_, index) => index % count === w)
      this.#writers.push(
        (async () => {
          while (!this.#stop) {
            try {
              await this.#op(own)
              this.counts.ops++
            } catch (error) {
              this.counts.failures++
              this.errors.push(error)
            }
          }
        })(),
      )
    }
  }

  async stopWriters(): Promise<void> {
    this.#stop = true
    await Promise.all(this.#writers)
    this.#writers = []
  }

  /** Compares every shard's rows with the ledger and the final map. */
  async audit(): Promise<{
    lost: number
    duplicated: number
    wrongShard: number
    ghosts: number
    rows: number
  }> {
    const map = (await this.store.load()) as ShardMap
    const seen = new Map<string, string>()
    let duplicated = 0
    let wrongShard = 0
    let ghosts = 0
    let lost = 0
    for (const [index, db] of this.direct.entries()) {
      const rows = await db.selectFrom('items').select(['id', 'user_id', 'value']).execute()
      for (const row of rows) {
        if (seen.has(row.id)) duplicated++
        seen.set(row.id, NAMES[index] as string)
        if (map.shardOf(row.user_id) !== NAMES[index]) wrongShard++
        const expected = this.truth.get(row.id)
        if (!expected) ghosts++
        else if (expected.value !== row.value) lost++
      }
    }
    for (const id of this.truth.keys()) if (!seen.has(id)) lost++
    return { lost, duplicated, wrongShard, ghosts, rows: seen.size }
  }

  async close(): Promise<void> {
    await this.stopWriters()
    await this.router?.close()
    await Promise.all(this.direct.map((db) => db.destroy()))
  }
}
