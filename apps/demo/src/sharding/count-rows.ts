import type { ShardMap } from '@scale/sharding'
import { type Kysely, sql } from 'kysely'
import type { ShardDatabase } from './shard-schema.js'
import type { WriteLedger } from './write-mix.js'

type Shards = Record<string, Kysely<ShardDatabase>>

/** Users per shard, counted on each shard's primary. */
export async function usersPerShard(primaries: Shards): Promise<Record<string, number>> {
  const counts = await Promise.all(
    Object.entries(primaries).map(async ([name, db]) => {
      const row = await db
        .selectFrom('account')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
      return [name, Number(row.n)] as const
    }),
  )
  return Object.fromEntries(counts)
}

/** Users whose shard differs between two maps, out of users 1..`users`. */
export function keysMoved(before: ShardMap, after: ShardMap, users: number): number {
  let moved = 0
  for (let id = 1; id <= users; id++) if (before.shardOf(id) !== after.shardOf(id)) moved++
  return moved
}

/** The rows on the shards, matched against what the load side sent and was told was stored. */
export interface WriteAudit {
  sent: number
  acknowledged: number
  /** Acknowledged posts found on no shard. */
  lost: number
  /** Posts found on more than one shard. */
  duplicated: number
  /** Posts on a shard the final map does not give their user to. */
  misplaced: number
  /** Posts stored whose answer never reached the load side (in flight when a phase ended). */
  storedUnacknowledged: number
  /** Users whose post counter differs from their posts (the two writes of one transaction). */
  counterMismatches: number
}

export async function auditWrites(
  primaries: Shards,
  map: ShardMap,
  ledger: WriteLedger,
): Promise<WriteAudit> {
  const seen = new Map<number, number>()
  let misplaced = 0
  let counterMismatches = 0
  for (const [name, db] of Object.entries(primaries)) {
    const posts = await db.selectFrom('post').select(['id', 'user_id']).execute()
    for (const post of posts) {
      const id = Number(post.id)
      seen.set(id, (seen.get(id) ?? 0) + 1)
      if (map.shardOf(Number(post.user_id)) !== name) misplaced++
    }
    const { rows } = await sql<{ n: string }>`select count(*) as n from account a
      left join (select user_id, count(*) as c from post group by user_id) p on p.user_id = a.id
      where a.posts <> coalesce(p.c, 0)`.execute(db)
    counterMismatches += Number(rows[0]?.n ?? 0)
  }
  let lost = 0
  for (const id of ledger.acknowledged.keys()) if (!seen.has(id)) lost++
  let duplicated = 0
  let storedUnacknowledged = 0
  for (const [id, copies] of seen) {
    if (copies > 1) duplicated++
    if (!ledger.acknowledged.has(id)) storedUnacknowledged++
  }
  return {
    sent: ledger.sent,
    acknowledged: ledger.acknowledged.size,
    lost,
    duplicated,
    misplaced,
    storedUnacknowledged,
    counterMismatches,
  }
}
