import { ShardMapInvalidError } from './errors.js'
import type { ShardMap } from './shard-map.js'

/** One bucket to move. */
export interface BucketMove {
  readonly bucket: number
  readonly from: string
  readonly to: string
}

/** What {@link planRebalance} proposes, with its cost against the minimum. */
export interface RebalancePlan {
  readonly moves: readonly BucketMove[]
  /** Share of the hashed buckets (so of the keys, which hash evenly) that move. */
  readonly fractionMoved: number
  /**
   * The least any scheme must move to even out the load: growing from n to m shards,
   * (m - n) / m of the keys (1/(n+1) when adding one).
   */
  readonly minimumFraction: number
}

/**
 * Plans moving hashed buckets so that each of `shards` owns an equal share (±1), moving only the
 * buckets of overfull shards (and of shards that leave). Hot buckets stay where they are.
 *
 * @example
 * ```ts
 * const plan = planRebalance(map, ['s1', 's2', 's3', 's4', 's5'])
 * plan.fractionMoved // 0.2 = plan.minimumFraction
 * ```
 */
export function planRebalance(map: ShardMap, shards: readonly string[]): RebalancePlan {
  if (map.strategy !== 'bucket')
    throw new ShardMapInvalidError('only a bucket map can be rebalanced bucket by bucket')
  if (shards.length === 0) throw new ShardMapInvalidError('the plan needs at least one shard')
  const n = map.data.bucketCount
  const owned = new Map<string, number[]>(shards.map((shard) => [shard, []]))
  const loose: Array<{ bucket: number; from: string }> = []
  map.data.buckets.forEach((shard, bucket) => {
    const list = owned.get(shard)
    if (list) list.push(bucket)
    else loose.push({ bucket, from: shard })
  })
  // Shards sorted by name get the remainder buckets first, so the plan is deterministic.
  const quota = new Map(
    shards.map((shard, index) => [
      shard,
      Math.floor(n / shards.length) + (index < n % shards.length ? 1 : 0),
    ]),
  )
  for (const [shard, list] of owned) {
    const keep = quota.get(shard) ?? 0
    while (list.length > keep) loose.push({ bucket: list.pop() as number, from: shard })
  }
  const moves: BucketMove[] = []
  for (const [shard, list] of owned) {
    while (list.length < (quota.get(shard) ?? 0)) {
      const next = loose.shift()
      if (!next) break
      list.push(next.bucket)
      moves.push({ bucket: next.bucket, from: next.from, to: shard })
    }
  }
  moves.sort((a, b) => a.bucket - b.bucket)
  const before = new Set(map.data.buckets)
  const kept = shards.filter((shard) => before.has(shard)).length
  return {
    moves,
    fractionMoved: moves.length / n,
    minimumFraction: shards.length > kept ? (shards.length - kept) / shards.length : 0,
  }
}
