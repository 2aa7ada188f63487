import { ShardMapInvalidError } from './errors.js'
import { hashKey } from './hash.js'
import { canonicalKey, integerOfKey } from './shard-key.js'

/**
 * `'bucket'`: key → hash → one of `bucketCount` virtual buckets → shard (moves one bucket at a
 * time). `'modulo'`: the book's `key % N` (N = number of shards): adding a shard moves most keys.
 */
export type ShardStrategy = 'bucket' | 'modulo'

/** A key pinned to a bucket of its own (numbered from `bucketCount` up) on a shard of its own. */
export interface HotKey {
  readonly key: string
  readonly bucket: number
  readonly shard: string
}

/** The serializable shard map: JSON as stored in the control table or a file. */
export interface ShardMapData {
  readonly version: 1
  /** Grows by one with every change; a router never goes back to a lower epoch. */
  readonly epoch: number
  readonly strategy: ShardStrategy
  /** Number of hashed buckets (`'bucket'`), or N (`'modulo'`). */
  readonly bucketCount: number
  /** The shard of each hashed bucket, by index. */
  readonly buckets: readonly string[]
  readonly hotKeys: readonly HotKey[]
}

/** Buckets fit 12 bits of a global ID, hot buckets included. */
export const MAX_BUCKETS = 4096

/** An immutable, validated shard map with the routing functions. */
export class ShardMap {
  readonly data: ShardMapData
  readonly #hotByKey: Map<string, HotKey>
  readonly #hotByBucket: Map<number, HotKey>
  readonly shards: readonly string[]

  constructor(data: ShardMapData) {
    validate(data)
    this.data = data
    this.#hotByKey = new Map(data.hotKeys.map((hot) => [hot.key, hot]))
    this.#hotByBucket = new Map(data.hotKeys.map((hot) => [hot.bucket, hot]))
    this.shards = [...new Set([...data.buckets, ...data.hotKeys.map((hot) => hot.shard)])].sort()
  }

  get epoch(): number {
    return this.data.epoch
  }

  get strategy(): ShardStrategy {
    return this.data.strategy
  }

  /** Hashed buckets plus hot buckets. */
  get totalBuckets(): number {
    return this.data.bucketCount + this.data.hotKeys.length
  }

  /** The bucket of a key (validated: a bad key throws before anything runs). */
  bucketOf(key: unknown): number {
    return this.bucketOfCanonical(canonicalKey(key, 'bucketOf'))
  }

  bucketOfCanonical(canonical: string): number {
    const hot = this.#hotByKey.get(canonical)
    if (hot) return hot.bucket
    const n = this.data.bucketCount
    if (this.data.strategy === 'modulo') {
      const integer = integerOfKey(canonical)
      if (integer !== undefined) return Number(((integer % BigInt(n)) + BigInt(n)) % BigInt(n))
    }
    return hashKey(canonical) % n
  }

  /** The shard that owns a bucket. */
  shardOfBucket(bucket: number): string {
    const shard = this.data.buckets[bucket] ?? this.#hotByBucket.get(bucket)?.shard
    if (shard === undefined) throw new ShardMapInvalidError(`bucket ${bucket} is not in the map`)
    return shard
  }

  shardOf(key: unknown): string {
    return this.shardOfBucket(this.bucketOf(key))
  }

  /** The hot key pinned to a bucket, if that bucket is a hot one. */
  hotKeyOfBucket(bucket: number): HotKey | undefined {
    return this.#hotByBucket.get(bucket)
  }

  /** Every bucket a shard owns. */
  bucketsOf(shard: string): number[] {
    const owned: number[] = []
    // Hot buckets are numbered right after the hashed ones, so 0 .. totalBuckets - 1 covers all.
    for (let bucket = 0; bucket < this.totalBuckets; bucket++) {
      if (this.shardOfBucket(bucket) === shard) owned.push(bucket)
    }
    return owned
  }

  /** A new map, one epoch later, with `bucket` on `shard`. */
  withBucketOn(bucket: number, shard: string): ShardMap {
    const hot = this.#hotByBucket.get(bucket)
    const buckets = [...this.data.buckets]
    if (!hot) buckets[bucket] = shard
    const hotKeys = this.data.hotKeys.map((entry) => (entry.bucket === bucket ? { ...entry, shard } : entry))
    return new ShardMap({ ...this.data, epoch: this.data.epoch + 1, buckets, hotKeys })
  }

  toJSON(): ShardMapData {
    return this.data
  }

  serialize(): string {
    return JSON.stringify(this.data)
  }

  /** Parses a serialized map (a string or the parsed JSON); throws `ShardMapInvalidError`. */
  static parse(input: string | unknown): ShardMap {
    let data: unknown = input
    if (typeof input === 'string') {
      try {
        data = JSON.parse(input)
      } catch (error) {
        throw new ShardMapInvalidError('not JSON', error)
      }
    }
    return new ShardMap(data as ShardMapData)
  }
}

function validate(data: ShardMapData): void {
  if (data === null || typeof data !== 'object') throw new ShardMapInvalidError('not an object')
  if (data.version !== 1) throw new ShardMapInvalidError(`unsupported version ${String(data.version)}`)
  if (!Number.isSafeInteger(data.epoch) || data.epoch < 1)
    throw new ShardMapInvalidError('epoch must be an integer >= 1')
  if (data.strategy !== 'bucket' && data.strategy !== 'modulo')
    throw new ShardMapInvalidError(`unknown strategy ${String(data.strategy)}`)
  const n = data.bucketCount
  if (!Number.isSafeInteger(n) || n < 1) throw new ShardMapInvalidError('bucketCount must be an integer >= 1')
  if (!Array.isArray(data.buckets) || data.buckets.length !== n)
    throw new ShardMapInvalidError(`buckets must list ${n} shard names`)
  if (data.buckets.some((shard) => typeof shard !== 'string' || shard.length === 0))
    throw new ShardMapInvalidError('every bucket needs a shard name')
  if (!Array.isArray(data.hotKeys)) throw new ShardMapInvalidError('hotKeys must be an array')
  if (n + data.hotKeys.length > MAX_BUCKETS)
    throw new ShardMapInvalidError(`at most ${MAX_BUCKETS} buckets, hot ones included (they must fit an ID)`)
  const seenKeys = new Set<string>()
  data.hotKeys.forEach((hot, index) => {
    if (hot.bucket !== n + index)
      throw new ShardMapInvalidError(`hot key ${index} must have bucket ${n + index}`)
    if (typeof hot.key !== 'string' || hot.key.length === 0 || seenKeys.has(hot.key))
      throw new ShardMapInvalidError(`hot key ${index} must be a distinct canonical key`)
    if (typeof hot.shard !== 'string' || hot.shard.length === 0)
      throw new ShardMapInvalidError(`hot key ${index} needs a shard`)
    seenKeys.add(hot.key)
  })
  if (data.strategy === 'modulo' && data.hotKeys.length > 0)
    throw new ShardMapInvalidError('the modulo strategy has no hot keys')
}

/** Options of {@link createShardMap}. */
export interface CreateShardMapOptions {
  /** Shard names, in order: buckets are dealt out to them in contiguous ranges. */
  shards: readonly string[]
  /**
   * `'bucket'` (virtual buckets) or `'modulo'` (`key % shards.length`, for comparison).
   * @default 'bucket'
   */
  strategy?: ShardStrategy
  /**
   * Number of virtual buckets: the unit a reshard moves. Fixed for the map's life.
   * @default 1024
   */
  bucketCount?: number
  /** Keys pinned to a bucket of their own, each on the named shard (e.g. a shard of its own). */
  hotKeys?: ReadonlyArray<{ key: string | number | bigint; shard: string }>
  /** @default 1 */
  epoch?: number
}

/** Builds the first map: buckets dealt to the shards in contiguous ranges, hot keys pinned. */
export function createShardMap(options: CreateShardMapOptions): ShardMap {
  const shards = options.shards
  if (!Array.isArray(shards) || shards.length === 0)
    throw new ShardMapInvalidError('shards must name at least one shard')
  const strategy = options.strategy ?? 'bucket'
  const bucketCount = strategy === 'modulo' ? shards.length : (options.bucketCount ?? 1024)
  const buckets = Array.from(
    { length: bucketCount },
    (_, bucket) => shards[Math.floor((bucket * shards.length) / bucketCount)] as string,
  )
  const hotKeys = (options.hotKeys ?? []).map((hot, index) => ({
    key: canonicalKey(hot.key, 'createShardMap'),
    bucket: bucketCount + index,
    shard: hot.shard,
  }))
  return new ShardMap({ version: 1, epoch: options.epoch ?? 1, strategy, bucketCount, buckets, hotKeys })
}
