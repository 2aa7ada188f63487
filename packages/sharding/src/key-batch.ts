import type { Kysely } from 'kysely'
import { ShardMapInvalidError } from './errors.js'
import type { ShardKey } from './shard-key.js'
import { canonicalKey } from './shard-key.js'
import type { ShardMap } from './shard-map.js'

/** One shard's share of the keys given to `forKeys()`. */
export interface ShardGroup<DB, K> {
  readonly shard: string
  readonly db: Kysely<DB>
  readonly keys: K[]
}

/** The keys of `forKeys()` split per shard. */
export interface KeyBatch<DB, K> {
  readonly groups: readonly ShardGroup<DB, K>[]
  /**
   * Runs `query` once per shard with that shard's keys (e.g. `where('user_id', 'in', keys)`),
   * all shards at once, and concatenates the rows. A group refused by a fenced shard is split
   * again on the newer map and retried.
   */
  execute<R>(query: (db: Kysely<DB>, keys: K[], shard: string) => Promise<R[]>): Promise<R[]>
}

/** What a key batch needs from the router. */
export interface BatchRouter<DB> {
  map(): ShardMap
  shard(name: string): Kysely<DB>
  /** Runs `attempt`; a fenced refusal reloads the map and runs it again. */
  runFenced<R>(attempt: () => Promise<R>): Promise<R>
}

interface Regroup {
  readonly regroup: Map<string, number[]>
}

export function createKeyBatch<DB, K extends ShardKey>(
  router: BatchRouter<DB>,
  keys: readonly K[],
): KeyBatch<DB, K> {
  if (!Array.isArray(keys)) throw new ShardMapInvalidError('forKeys() takes an array of keys')
  // Every key is checked (and hashed) before anything runs.
  const buckets = keys.map((key) => router.map().bucketOfCanonical(canonicalKey(key, 'forKeys')))
  const keysAt = (indexes: readonly number[]) => indexes.map((index) => keys[index] as K)
  const group = (indexes: readonly number[]): Map<string, number[]> => {
    const map = router.map()
    const byShard = new Map<string, number[]>()
    for (const index of indexes) {
      const shard = map.shardOfBucket(buckets[index] as number)
      const list = byShard.get(shard)
      if (list) list.push(index)
      else byShard.set(shard, [index])
    }
    return byShard
  }
  const initial = group(keys.map((_, index) => index))

  const runGroup = async <R>(
    shard: string,
    indexes: number[],
    query: (db: Kysely<DB>, keys: K[], shard: string) => Promise<R[]>,
  ): Promise<R[]> => {
    const outcome = await router.runFenced<R[] | Regroup>(() => {
      // After a refusal the map is newer: the group may now span several shards.
      const regrouped = group(indexes)
      if (regrouped.size === 1 && regrouped.has(shard))
        return query(router.shard(shard), keysAt(indexes), shard)
      return Promise.resolve({ regroup: regrouped })
    })
    if (Array.isArray(outcome)) return outcome
    const parts = await Promise.all([...outcome.regroup].map(([next, list]) => runGroup(next, list, query)))
    return parts.flat()
  }

  return {
    groups: [...initial].map(([shard, indexes]) => ({
      shard,
      db: router.shard(shard),
      keys: keysAt(indexes),
    })),
    async execute<R>(query: (db: Kysely<DB>, keys: K[], shard: string) => Promise<R[]>): Promise<R[]> {
      const parts = await Promise.all([...initial].map(([shard, indexes]) => runGroup(shard, indexes, query)))
      return parts.flat()
    },
  }
}
