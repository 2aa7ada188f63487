import {
  type CompiledQuery,
  createQueryId,
  type Kysely,
  type OperationNode,
  type QueryExecutor,
  type SelectQueryNode,
  sql,
  type Transaction,
} from 'kysely'
import {
  ShardingClosedError,
  ShardMapInvalidError,
  ShardMapStaleError,
  UnknownShardError,
  UnmergeableQueryError,
} from './errors.js'
import { isFencedError } from './fence.js'
import { bucketOfId } from './global-id-layout.js'
import { KeyRoutedKysely } from './key-routed-kysely.js'
import { MapHolder } from './map-holder.js'
import { type Divide, mergeShardRows } from './merge/merge-rows.js'
import { planSelect } from './merge/plan-select.js'
import { Observability } from './observability.js'
import { type ResolvedOptions, resolveOptions, type ShardedKyselyOptions } from './options.js'
import { fanOut, type ScatterOptions, type ScatterResult } from './scatter.js'
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

/** Keyless queries: they must say so. */
export interface AllShards<DB> {
  /** Runs `query` on every shard (in parallel, each under the deadline); rows are concatenated, unordered. */
  each<R>(
    query: (db: Kysely<DB>, shard: string) => Promise<R[]>,
    options?: ScatterOptions,
  ): Promise<ScatterResult<R>>
  /**
   * Runs one SELECT on every shard and merges the rows into what a single database holding all
   * of them would answer: ORDER BY (also by columns not selected), LIMIT/OFFSET (each shard
   * returns limit + offset rows, the merge applies both again), COUNT/SUM/MIN/MAX, AVG as
   * total SUM / total COUNT, GROUP BY with HAVING. A query it cannot merge exactly (DISTINCT,
   * window functions, COUNT(DISTINCT), expressions over aggregates, UNION, ...) is refused with
   * `UnmergeableQueryError` before anything runs.
   *
   * @example
   * ```ts
   * const { rows } = await db.allShards().select((db) =>
   *   db.selectFrom('photo').select(['user_id', (eb) => eb.fn.countAll().as('n')]).groupBy('user_id').orderBy('n', 'desc').limit(10),
   * )
   * ```
   */
  select<O>(query: (db: Kysely<DB>) => SelectLike<O>, options?: ScatterOptions): Promise<ScatterResult<O>>
}

/** A Kysely select query builder (anything that compiles to a SELECT). */
export interface SelectLike<O> {
  toOperationNode(): OperationNode
  compile(): CompiledQuery<O>
}

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
  /** Loads the stored map now and adopts it if newer. */
  refresh(): Promise<ShardMap>
  /** Stops watching the map and destroys every shard's Kysely (bounded); idempotent. */
  close(): Promise<void>
}

/**
 * AVG's final division. Floats divide in JavaScript; integers and numerics divide in Postgres so
 * the result has exactly the digits `avg()` would print (numeric division picks its own scale).
 */
const divideExactly = async <DB>(
  db: Kysely<DB> | undefined,
  pairs: Parameters<Divide>[0],
): Promise<unknown[]> => {
  const exact = pairs.filter(([sum, count]) => sum !== null && typeof sum !== 'number' && count !== null)
  const divided: unknown[] = []
  if (exact.length > 0 && db) {
    const { rows } = await sql<{ v: unknown }>`select (s::numeric / nullif(c::numeric, 0)) as v
      from unnest(${exact.map(([sum]) => String(sum))}::text[], ${exact.map(([, count]) => String(count))}::text[])
      with ordinality as u(s, c, n) order by n`.execute(db)
    divided.push(...rows.map((row) => row.v))
  }
  return pairs.map(([sum, count]) => {
    if (sum === null || count === null || Number(count) === 0) return null
    return typeof sum === 'number' ? sum / Number(count) : divided.shift()
  })
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

class ShardedKyselyImpl<DB> implements ShardedKysely<DB> {
  readonly #options: ResolvedOptions<DB>
  readonly #holder: MapHolder
  readonly #obs: Observability
  #closed = false

  constructor(options: ResolvedOptions<DB>, map: ShardMap, obs: Observability) {
    this.#options = options
    this.#obs = obs
    this.#holder = new MapHolder(map, options.store, (next) => this.#checkShards(next), obs)
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

  /** Runs `attempt`; when a shard refuses it as fenced, reloads the map and runs it again. */
  async #runFenced<R>(bucket: number | undefined, attempt: () => Promise<R>): Promise<R> {
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
    if (!Array.isArray(keys)) throw new ShardMapInvalidError('forKeys() takes an array of keys')
    const buckets = keys.map((key) => this.map.bucketOfCanonical(canonicalKey(key, 'forKeys')))
    const group = (indexes: number[]) => {
      const byShard = new Map<string, number[]>()
      for (const index of indexes) {
        const shard = this.map.shardOfBucket(buckets[index] as number)
        const list = byShard.get(shard) ?? []
        list.push(index)
        byShard.set(shard, list)
      }
      return byShard
    }
    const toGroups = (byShard: Map<string, number[]>): ShardGroup<DB, K>[] =>
      [...byShard].map(([shard, indexes]) => ({
        shard,
        db: this.shard(shard),
        keys: indexes.map((index) => keys[index] as K),
      }))
    const initial = group(keys.map((_, index) => index))
    const runGroup = async (
      shard: string,
      indexes: number[],
      query: (db: Kysely<DB>, keys: K[], shard: string) => Promise<unknown[]>,
    ): Promise<unknown[]> => {
      try {
        return await this.#runFenced(undefined, () => {
          const regrouped = group(indexes)
          if (regrouped.size === 1 && regrouped.has(shard))
            return query(
              this.shard(shard),
              indexes.map((index) => keys[index] as K),
              shard,
            )
          throw Object.assign(new Error('regroup'), { regroup: regrouped })
        })
      } catch (error) {
        const regroup = (error as { regroup?: Map<string, number[]> }).regroup
        if (!regroup) throw error
        const parts = await Promise.all([...regroup].map(([next, list]) => runGroup(next, list, query)))
        return parts.flat()
      }
    }
    return {
      groups: toGroups(initial),
      execute: async <R>(query: (db: Kysely<DB>, keys: K[], shard: string) => Promise<R[]>) => {
        const parts = await Promise.all(
          [...initial].map(([shard, indexes]) => runGroup(shard, indexes, query)),
        )
        return parts.flat() as R[]
      },
    }
  }

  allShards(): AllShards<DB> {
    this.#open('allShards')
    return {
      each: async <R>(
        query: (db: Kysely<DB>, shard: string) => Promise<R[]>,
        options: ScatterOptions = {},
      ) => {
        this.#open('allShards')
        const { answers, missing } = await fanOut(
          this.#options.shards,
          query,
          options.deadlineMs ?? this.#options.scatterDeadlineMs,
          options.allowPartial ?? false,
        )
        return {
          rows: answers.flatMap((answer) => answer.value),
          complete: missing.length === 0,
          missingShards: missing,
        }
      },
      select: async <O>(query: (db: Kysely<DB>) => SelectLike<O>, options: ScatterOptions = {}) => {
        this.#open('allShards')
        const started = Date.now()
        const [first] = this.#options.shards.values()
        const node = query(first as Kysely<DB>).toOperationNode()
        if (node.kind !== 'SelectQueryNode')
          throw new UnmergeableQueryError(`only SELECT is merged, got ${node.kind}`)
        const plan = planSelect(node as SelectQueryNode)
        const { answers, missing } = await fanOut(
          this.#options.shards,
          async (db) => {
            const executor = db.getExecutor()
            const queryId = createQueryId()
            const compiled = executor.compileQuery(executor.transformQuery(plan.shardNode, queryId), queryId)
            return (await executor.executeQuery<Record<string, unknown>>(compiled)).rows
          },
          options.deadlineMs ?? this.#options.scatterDeadlineMs,
          options.allowPartial ?? false,
        )
        const divider = answers[0] ? this.shard(answers[0].shard) : undefined
        const rows = await mergeShardRows(
          plan,
          answers.map((answer) => answer.value),
          this.#options.compareText,
          (pairs) => divideExactly(divider, pairs),
        )
        this.#obs.observe('sharding_scatter_ms', Date.now() - started)
        return { rows: rows as O[], complete: missing.length === 0, missingShards: missing }
      },
    }
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
    await Promise.all(
      [...this.#options.shards.values()].map((db) =>
        Promise.race([db.destroy().catch(() => {}), sleep(5_000)]),
      ),
    )
  }
}

/**
 * Kysely over many PostgreSQL shards, routed by a versioned shard map. ESM only.
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
  const obs = new Observability(options.logger, options.metrics)
  const map = resolved.map ?? (await resolved.store?.load())
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
