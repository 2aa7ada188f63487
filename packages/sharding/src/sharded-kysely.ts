import type { Kysely, QueryExecutor, Transaction } from 'kysely'
import { type AllShards, createAllShards } from './all-shards.js'
import { ShardingClosedError, ShardMapInvalidError, ShardMapStaleError, UnknownShardError } from './errors.js'
import { isFencedError } from './fence.js'
import { bucketOfId } from './global-id-layout.js'
import { createKeyBatch, type KeyBatch } from './key-batch.js'
import { KeyRoutedKysely } from './key-routed-kysely.js'
import { loadInitialMap, MapHolder } from './map-holder.js'
import { Observability, SOURCE } from './observability.js'
import { type ResolvedOptions, resolveOptions, type ShardedKyselyOptions } from './options.js'
import type { ShardKey } from './shard-key.js'
import { canonicalKey } from './shard-key.js'
import type { ShardMap } from './shard-map.js'

/** Kysely over many shards; see {@link createShardedKysely}. */
export interface ShardedKysely<DB> {
  /** The map in force in this router now. */
  readonly map: ShardMap
  /** The configured shard names. */
  readonly shardNames: readonly string[]
  /** The Kysely of the key's shard: single queries are re-routed and retried if the bucket moved. */
  forKey(key: ShardKey): Kysely<DB>
  /** The keys split per shard, for `IN` lists. */
  forKeys<K extends ShardKey>(keys: readonly K[]): KeyBatch<DB, K>
  /** The Kysely of a bucket's shard (e.g. the bucket read from a global ID). */
  forBucket(bucket: number): Kysely<DB>
  /** The Kysely of the bucket carried by a global ID: a row found by ID, routed without a lookup. */
  forId(id: bigint | string): Kysely<DB>
  /** One shard by name, as configured (no routing, no retry). */
  shard(name: string): Kysely<DB>
  /** Queries with no shard key. */
  allShards(): AllShards<DB>
  /**
   * Runs `work` in a transaction on the key's shard. If the shard refuses a write because the
   * bucket moved, the transaction is rolled back and `work` runs again on the new shard, so
   * `work` must be safe to run twice (it only touches the database through `trx`).
   */
  transactionForKey<R>(key: ShardKey, work: (trx: Transaction<DB>) => Promise<R>): Promise<R>
  bucketOf(key: ShardKey): number
  shardOf(key: ShardKey): string
  /**
   * Loads the stored map now and adopts it if newer. A store that fails or does not answer within
   * `mapLoadTimeoutMs` rejects with `ShardMapStaleError`; the router keeps its map.
   */
  refresh(): Promise<ShardMap>
  /** Stops watching the map and destroys every shard's Kysely (bounded); idempotent. */
  close(): Promise<void>
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Destroys a shard's Kysely, waiting at most `ms` (pg's pool.end() waits for connections checked
 * out by queries on a hung server). The timer is cleared as soon as the destroy ends, and unref'd:
 * a closed router never keeps the process alive.
 */
async function destroyWithin(db: { destroy(): Promise<void> }, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms)
    timer.unref()
  })
  await Promise.race([db.destroy().catch(() => {}), late])
  clearTimeout(timer)
}

class ShardedKyselyImpl<DB> implements ShardedKysely<DB> {
  readonly #options: ResolvedOptions<DB>
  readonly #holder: MapHolder
  readonly #obs: Observability
  #closed = false

  constructor(options: ResolvedOptions<DB>, map: ShardMap, obs: Observability) {
    this.#options = options
    this.#obs = obs
    this.#holder = new MapHolder(
      map,
      options.store,
      (next) => this.#checkShards(next),
      obs,
      options.mapLoadTimeoutMs,
    )
  }

  async start(): Promise<void> {
    await this.#holder.start(this.#options.refreshIntervalMs)
  }

  #checkShards(map: ShardMap): void {
    for (const shard of map.shards) {
      if (!this.#options.shards.has(shard))
        throw new UnknownShardError(shard, [...this.#options.shards.keys()])
    }
  }

  get map(): ShardMap {
    return this.#holder.current
  }

  get shardNames(): readonly string[] {
    return [...this.#options.shards.keys()]
  }

  #open(method: string): void {
    if (this.#closed) throw new ShardingClosedError(method)
  }

  shard(name: string): Kysely<DB> {
    this.#open('shard')
    const db = this.#options.shards.get(name)
    if (!db) throw new UnknownShardError(name, this.shardNames)
    return db
  }

  bucketOf(key: ShardKey): number {
    return this.map.bucketOfCanonical(canonicalKey(key, 'bucketOf'))
  }

  shardOf(key: ShardKey): string {
    return this.map.shardOfBucket(this.bucketOf(key))
  }

  forKey(key: ShardKey): Kysely<DB> {
    this.#open('forKey')
    return this.forBucket(this.map.bucketOfCanonical(canonicalKey(key, 'forKey')))
  }

  forBucket(bucket: number): Kysely<DB> {
    this.#open('forBucket')
    if (!Number.isInteger(bucket) || bucket < 0 || bucket >= this.map.totalBuckets)
      throw new ShardMapInvalidError(`bucket ${bucket} is not in the map (0..${this.map.totalBuckets - 1})`)
    return new KeyRoutedKysely<DB>({
      shardDb: () => this.#shardOfBucket(bucket),
      runFenced: <R>(attempt: (executor: QueryExecutor) => Promise<R>) =>
        this.#runFenced(bucket, () => attempt(this.#shardOfBucket(bucket).getExecutor())),
    })
  }

  forId(id: bigint | string): Kysely<DB> {
    return this.forBucket(bucketOfId(id))
  }

  #shardOfBucket(bucket: number): Kysely<DB> {
    const name = this.map.shardOfBucket(bucket)
    this.#obs.increment('sharding_route_total', { shard: name })
    return this.shard(name)
  }

  /**
   * A map the store has not confirmed for `maxMapAgeMs` is reloaded before it routes anything:
   * after a move, the old shard's copy is deleted `cleanupDelayMs` later, and an UPDATE or
   * DELETE that finds no rows there would fire no trigger, so no fence could refuse it.
   */
  async #ensureFresh(bucket: number | undefined): Promise<void> {
    const limit = this.#options.maxMapAgeMs
    if (limit <= 0 || this.#holder.ageMs <= limit) return
    try {
      await this.#holder.refresh()
    } catch (error) {
      throw new ShardMapStaleError(
        { bucket, epoch: this.map.epoch, mapAgeMs: Math.round(this.#holder.ageMs) },
        error,
      )
    }
  }

  /** Runs `attempt`; when a shard refuses it as fenced, reloads the map and runs it again. */
  async #runFenced<R>(bucket: number | undefined, attempt: () => Promise<R>): Promise<R> {
    await this.#ensureFresh(bucket)
    const started = Date.now()
    let pause = 5
    for (;;) {
      try {
        return await attempt()
      } catch (error) {
        if (!isFencedError(error)) throw error
        this.#obs.increment('sharding_fenced_retries_total')
        const epoch = this.map.epoch
        if (Date.now() - started >= this.#options.staleRetryMs)
          throw new ShardMapStaleError({ bucket, epoch, waitedMs: Date.now() - started }, error)
        await this.#holder.refresh().catch(() => {})
        // Same epoch: the bucket is mid cut-over; wait for the mover to publish the next one.
        if (this.map.epoch === epoch) {
          await sleep(pause)
          pause = Math.min(pause * 2, 100)
        }
      }
    }
  }

  forKeys<K extends ShardKey>(keys: readonly K[]): KeyBatch<DB, K> {
    this.#open('forKeys')
    return createKeyBatch<DB, K>(
      {
        map: () => this.map,
        shard: (name) => this.shard(name),
        runFenced: (attempt) => this.#runFenced(undefined, attempt),
      },
      keys,
    )
  }

  allShards(): AllShards<DB> {
    this.#open('allShards')
    return createAllShards<DB>({
      shards: this.#options.shards,
      deadlineMs: this.#options.scatterDeadlineMs,
      compareText: this.#options.compareText,
      obs: this.#obs,
      assertOpen: () => this.#open('allShards'),
    })
  }

  async transactionForKey<R>(key: ShardKey, work: (trx: Transaction<DB>) => Promise<R>): Promise<R> {
    this.#open('transactionForKey')
    const bucket = this.map.bucketOfCanonical(canonicalKey(key, 'transactionForKey'))
    return this.#runFenced(bucket, () => this.#shardOfBucket(bucket).transaction().execute(work))
  }

  refresh(): Promise<ShardMap> {
    this.#open('refresh')
    return this.#holder.refresh()
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#holder.close()
    await Promise.all([...this.#options.shards.values()].map((db) => destroyWithin(db, 5_000)))
  }
}

/**
 * Kysely over many PostgreSQL shards, routed by a versioned shard map. ESM only.
 *
 * With a store, it loads the map first: a store that fails or does not answer within
 * `mapLoadTimeoutMs` (also for opening LISTEN) rejects with `ShardMapStaleError`
 * (`context.startup: true`), leaving nothing running; call it again once the store answers.
 *
 * @example
 * ```ts
 * const db = await createShardedKysely<Database>({
 *   shards: { s1: new Kysely({ dialect: new PostgresDialect({ pool: pool1 }) }), s2: ... },
 *   map: createShardMap({ shards: ['s1', 's2'] }),
 * })
 * await db.forKey(userId).insertInto('photo').values({ user_id: userId, url }).execute()
 * const { rows } = await db.allShards().each((shard) => shard.selectFrom('photo').selectAll().execute())
 * ```
 */
export async function createShardedKysely<DB>(options: ShardedKyselyOptions<DB>): Promise<ShardedKysely<DB>> {
  const resolved = resolveOptions(options)
  const obs = new Observability(options.logger, options.metrics, SOURCE)
  const map =
    resolved.map ??
    (resolved.store ? await loadInitialMap(resolved.store, resolved.mapLoadTimeoutMs) : undefined)
  if (!map)
    throw new ShardMapInvalidError(
      'the store holds no map yet: save one first (store.save(createShardMap(...)))',
    )
  const router = new ShardedKyselyImpl<DB>(resolved, map, obs)
  for (const shard of map.shards) {
    if (!resolved.shards.has(shard)) throw new UnknownShardError(shard, [...resolved.shards.keys()])
  }
  await router.start()
  return router
}
