import { createShardMap } from '@scale/sharding'
import { type PostgresCluster, startPostgres } from '@scale/testkit'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { auditWrites, keysMoved, usersPerShard } from '../src/sharding/count-rows.js'
import { createShardTables, type ShardDatabase } from '../src/sharding/shard-schema.js'
import type { WriteLedger } from '../src/sharding/write-mix.js'

/**
 * Stage 11 reports "0 lost writes" from this audit, so it is shown to see every way a write can go
 * wrong: an acknowledged post missing, one stored twice, one on a shard that does not own its user,
 * a post counter that disagrees with the posts.
 */
let clusters: PostgresCluster[] = []
let shards: Record<string, Kysely<ShardDatabase>> = {}
const map = createShardMap({ shards: ['s1', 's2'], bucketCount: 32 })

beforeAll(async () => {
  clusters = await Promise.all([startPostgres(), startPostgres()])
  shards = {
    s1: new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool(clusters[0]!.primary.connection) }) }),
    s2: new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool(clusters[1]!.primary.connection) }) }),
  }
  await Promise.all(Object.values(shards).map((db) => createShardTables(db)))
})

afterAll(async () => {
  await Promise.all(Object.values(shards).map((db) => db.destroy()))
  await Promise.all(clusters.map((c) => c.stop()))
})

/** Users 1..20 on their shards, each with `posts` posts (IDs from 1000 up), counters right. */
async function seed(): Promise<WriteLedger> {
  const ledger: WriteLedger = { sent: 0, acknowledged: new Map() }
  for (const db of Object.values(shards)) {
    await db.deleteFrom('post').execute()
    await db.deleteFrom('account').execute()
  }
  for (let user = 1; user <= 20; user++) {
    const db = shards[map.shardOf(user)]!
    await db
      .insertInto('account')
      .values({ id: user, name: `user ${user}`, posts: 2 })
      .execute()
    for (let i = 0; i < 2; i++) {
      const id = 1000 + user * 10 + i
      await db.insertInto('post').values({ id, user_id: user, body: 'x' }).execute()
      ledger.sent++
      ledger.acknowledged.set(id, user)
    }
  }
  return ledger
}

const otherShard = (user: number) => (map.shardOf(user) === 's1' ? 's2' : 's1')

describe('the stage 11 write audit', () => {
  it('finds nothing wrong when every acknowledged post is where the map says', async () => {
    const ledger = await seed()
    const audit = await auditWrites(shards, map, ledger)
    expect(audit).toMatchObject({
      lost: 0,
      duplicated: 0,
      misplaced: 0,
      counterMismatches: 0,
      acknowledged: 40,
    })
    const spread = await usersPerShard(shards)
    expect((spread.s1 ?? 0) + (spread.s2 ?? 0)).toBe(20)
  })

  it('counts a lost, a duplicated, a misplaced post and a counter that disagrees', async () => {
    const ledger = await seed()
    // Lost: acknowledged, then gone.
    await shards[map.shardOf(3)]!.deleteFrom('post').where('id', '=', 1030).execute()
    // Duplicated (and misplaced): a copy left on the other shard.
    await shards[otherShard(4)]!.insertInto('post').values({ id: 1040, user_id: 4, body: 'x' }).execute()
    // Counter: a post counted twice.
    await shards[map.shardOf(5)]!.updateTable('account').set({ posts: 3 }).where('id', '=', 5).execute()
    // Stored but never acknowledged (an answer cut off): not an error.
    await shards[map.shardOf(6)]!.insertInto('post').values({ id: 9999, user_id: 6, body: 'x' }).execute()
    await shards[map.shardOf(6)]!.updateTable('account').set({ posts: 3 }).where('id', '=', 6).execute()
    const audit = await auditWrites(shards, map, ledger)
    // User 3's counter says 2 posts but 1 is left: one counter mismatch there too.
    expect(audit).toMatchObject({
      lost: 1,
      duplicated: 1,
      misplaced: 1,
      storedUnacknowledged: 1,
      counterMismatches: 2,
    })
  })

  it('counts the users whose shard changes between two maps', () => {
    const grown = createShardMap({ shards: ['s1', 's2', 's3'], bucketCount: 32 })
    const moved = keysMoved(map, grown, 10_000)
    expect(moved).toBeGreaterThan(0)
    expect(keysMoved(map, map, 10_000)).toBe(0)
  })
})
