import { createReplicatedKysely, QueryTimeoutError, ReadReplicaError } from '@scale/read-replica'
import { usePostgresClusters } from '@scale/testkit/vitest'
import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { createShardedKysely, createShardMap, type ShardedKysely } from '../src/index.js'
import { kysely, useUnhandledRejections, waitUntil } from './helpers.js'

// The router bounds its own waits (mapLoadTimeoutMs, staleRetryMs, scatter deadlines); a query on
// a shard waits as long as that shard's Kysely does. This is the setup the README gives for a
// per-query deadline on a hung shard: the shard wrapped in @scale/read-replica (no replicas), whose
// queryTimeoutMs closes the stuck connection, so the pool is not left with busy connections.

describe('a hung (SIGSTOPped) shard behind the README deadline setup', () => {
  // [s1 (paused), s2]
  const clusters = usePostgresClusters(2)
  const unhandled = useUnhandledRejections()
  afterEach(() => {
    clusters[0]?.primary.resume()
  })

  const keysOn = (db: ShardedKysely<unknown>, shard: string, count: number): number[] => {
    const keys: number[] = []
    for (let key = 1; keys.length < count; key++) if (db.shardOf(key) === shard) keys.push(key)
    return keys
  }

  it('forKey() queries on the hung shard fail typed, the other shard keeps answering, and the pool serves again on resume', async () => {
    const hung = clusters[0]!.primary
    const s1Pool = new pg.Pool({ ...hung.connection, max: 3, connectionTimeoutMillis: 300 })
    s1Pool.on('error', () => {})
    const s1: Kysely<unknown> = createReplicatedKysely({
      primary: { pool: s1Pool, name: 's1' },
      replicas: [],
      queryTimeoutMs: 300,
    })
    const db = await createShardedKysely<unknown>({
      shards: { s1, s2: kysely(clusters[1]!.primary) },
      map: createShardMap({ shards: ['s1', 's2'] }),
    })
    try {
      const onS1 = keysOn(db, 's1', 8)
      const [onS2] = keysOn(db, 's2', 1)
      const one = (key: number) => sql<{ k: number }>`select ${key}::int as k`.execute(db.forKey(key))
      await Promise.all(onS1.slice(0, 3).map(one)) // three idle connections in the pool

      hung.pause()
      // More queries than the pool has connections: every one settles, each with a typed error.
      const settled = await Promise.allSettled(onS1.map(one))
      const typed = settled.filter(
        (result) => result.status === 'rejected' && result.reason instanceof ReadReplicaError,
      )
      expect(typed.length).toBe(onS1.length)
      expect(
        settled.filter((result) => result.status === 'rejected' && result.reason instanceof QueryTimeoutError)
          .length,
      ).toBeGreaterThan(0)
      // The hung shard holds no other shard's query.
      expect((await one(onS2!)).rows).toEqual([{ k: onS2 }])

      hung.resume()
      // Right after SIGCONT the first new connections may still miss the 300 ms deadlines on a
      // loaded machine (the postmaster works through the attempts queued during the pause).
      await waitUntil('the shard to answer again', () =>
        one(onS1[0]!).then(
          () => true,
          () => false,
        ),
      )
      const after = await Promise.all(onS1.map(one))
      expect(after.map((result) => result.rows[0]?.k)).toEqual(onS1)
      expect(s1Pool.waitingCount).toBe(0)
      expect(s1Pool.totalCount).toBeLessThanOrEqual(3)
    } finally {
      hung.resume()
      await db.close()
    }
    expect(unhandled()).toEqual([])
  })

  it('close() leaves no timer behind: a script can exit as soon as it has closed the router', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length
    const before = timers()
    const db = await createShardedKysely<unknown>({
      shards: { s1: kysely(clusters[0]!.primary), s2: kysely(clusters[1]!.primary) },
      map: createShardMap({ shards: ['s1', 's2'] }),
    })
    await sql`select 1`.execute(db.forKey(1))
    await sql`select 1`.execute(db.forKey(2))
    await db.close()
    expect(timers()).toBe(before)
  })
})
