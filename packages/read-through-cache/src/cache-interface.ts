import type { CacheStats } from './cache-counters.js'
import type { CacheEventListener, CacheEventName } from './cache-events.js'
import type { MsetEntry } from './cache-writes.js'
import type { EntryOptions } from './entry-policy.js'
import type { BatchLoader, Loader } from './loader.js'

/**
 * A read-through cache over Redis with an optional in-process tier, as `createReadThroughCache`
 * returns it.
 */
export interface ReadThroughCache {
  /**
   * Resolves once the Redis client is connected and the invalidation channel is subscribed. Until
   * the channel is subscribed the local tier is not filled, so no entry can miss an invalidation.
   * Optional: calls made before work anyway (the first ones may time out while connecting).
   * Rejects with `CacheUnavailableError` after `timeoutMs`, so a start-up during an outage does not hang,
   * and with `CacheClosedError` if `close()` is called meanwhile.
   *
   * @example
   * ```ts
   * await cache.ready().catch((error) => logger.warn({ err: error }, 'starting without Redis'))
   * ```
   */
  ready(timeoutMs?: number): Promise<void>

  /**
   * Returns the cached value of `key`, or calls `loader` once (per key, across every process that
   * shares the Redis) and caches what it returns.
   *
   * @example
   * ```ts
   * const user = await cache.getOrLoad(`user:${id}`, () => db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst(), { ttlMs: 30_000, tags: [`user:${id}`] })
   * ```
   */
  getOrLoad<T>(key: string, loader: Loader<T>, options?: EntryOptions): Promise<T>

  /**
   * Like `getOrLoad` for many keys: one MGET for what Redis has, then the missing keys go to one
   * `batchLoader` call (leases, waits and stale handling as in `getOrLoad`, per key). Returns the
   * values in the order of `keys`.
   *
   * @example
   * ```ts
   * const users = await cache.getOrLoadMany(ids.map((id) => `user:${id}`), async (keys) => {
   *   const rows = await db.selectFrom('users').selectAll().where('id', 'in', keys.map(idOf)).execute()
   *   return new Map(rows.map((row) => [`user:${row.id}`, row]))
   * })
   * ```
   */
  getOrLoadMany<T>(
    keys: readonly string[],
    batchLoader: BatchLoader<T>,
    options?: EntryOptions,
  ): Promise<(T | undefined)[]>

  /**
   * Reads `key` without loading: the fresh value, or `undefined` (also when Redis is unreachable).
   *
   * @example
   * ```ts
   * const cached = await cache.get<User>('user:1')
   * ```
   */
  get<T>(key: string, options?: Pick<EntryOptions, 'local'>): Promise<T | undefined>

  /**
   * `get` for many keys: the local tier first, then one MGET for the rest (one GET per key,
   * pipelined, on a Cluster). Never loads; `undefined` for a key with no fresh value (also when
   * Redis is unreachable). Values in the order of `keys`.
   *
   * @example
   * ```ts
   * const [a, b] = await cache.mget<User>(['user:1', 'user:2'])
   * ```
   */
  mget<T>(keys: readonly string[], options?: Pick<EntryOptions, 'local'>): Promise<(T | undefined)[]>

  /**
   * `set` for many entries in one round trip, each with its own options (TTL, tags). Every value
   * is serialized before anything is written, so a `CacheSerializationError` writes nothing. As
   * `set`: voids loads in flight for these keys, drops them from every local tier; if Redis cannot
   * be reached every key is queued for invalidation and `CacheUnavailableError` is thrown.
   *
   * @example
   * ```ts
   * await cache.mset([{ key: 'user:1', value: u1 }, { key: 'user:2', value: u2, options: { ttlMs: 5_000 } }])
   * ```
   */
  mset<T>(entries: readonly MsetEntry<T>[]): Promise<void>

  /**
   * Whether `key` has a fresh cached value (locally or in Redis); never loads. A cached "not found"
   * counts as no value.
   *
   * @example
   * ```ts
   * if (!(await cache.has('report:2024'))) queueReportBuild()
   * ```
   */
  has(key: string): Promise<boolean>

  /**
   * Writes `value` under `key` in Redis and locally, voids any load in flight for it (that load
   * can no longer write), and drops the key from every other process's local tier.
   * Throws `CacheUnavailableError` if Redis cannot be reached (the local tier is updated anyway).
   *
   * @example
   * ```ts
   * await cache.set('user:1', user, { ttlMs: 30_000, tags: ['team:7'] })
   * ```
   */
  set<T>(key: string, value: T, options?: EntryOptions): Promise<void>

  /**
   * Removes `key` from Redis and from every process's local tier, and voids the lease of any load
   * in flight, so a loader that read the old row cannot put it back (delete on write).
   * If Redis cannot be reached the invalidation is queued, replayed when Redis answers again,
   * and `CacheUnavailableError` is thrown.
   *
   * @example
   * ```ts
   * await db.updateTable('users').set({ name }).where('id', '=', 1).execute()
   * await cache.delete('user:1')
   * ```
   */
  delete(key: string): Promise<void>

  /**
   * Marks `key` stale everywhere without removing it: the next read loads again (one load
   * fleet-wide), while the old value can still be served within `staleWhileRevalidateMs` or
   * `gracePeriodMs` (e.g. if the loader fails). A load in flight cannot write its (older) value.
   * If Redis cannot be reached the key is queued for a full invalidation and
   * `CacheUnavailableError` is thrown.
   *
   * @example
   * ```ts
   * await cache.expire('leaderboard') // recompute soon, but keep serving the old one meanwhile
   * ```
   */
  expire(key: string): Promise<void>

  /**
   * `delete` for many keys at once: one round of DELs and one invalidation message. If Redis
   * cannot be reached every key is queued for replay and `CacheUnavailableError` is thrown.
   *
   * @example
   * ```ts
   * await cache.deleteMany(['user:1', 'user:2'])
   * ```
   */
  deleteMany(keys: readonly string[]): Promise<void>

  /**
   * Removes every entry written with `tag`, everywhere, with the same no-stale-set guarantee as
   * `delete` (a load with this tag that started before the call cannot keep its value).
   *
   * @example
   * ```ts
   * await cache.deleteByTag('team:7')
   * ```
   */
  deleteByTag(tag: string): Promise<void>

  /**
   * Removes every entry of this cache's `prefix` from Redis (values, leases, tags) and from every
   * process's local tier; loads in flight cannot write afterwards (their leases are gone). Other
   * caches on the same Redis (other prefixes) are untouched. Resolves with the number of Redis keys
   * removed. Throws `CacheUnavailableError` if Redis cannot be reached (nothing is queued: run it
   * again).
   *
   * @example
   * ```ts
   * await cache.clear() // after a bulk import
   * ```
   */
  clear(): Promise<number>

  /**
   * Listens to `hit`, `miss`, `set`, `delete`, `stale` or `error` events of every key, or of one
   * key (`on('miss', 'user:1', listener)`). Returns the unsubscribe function. With no listener
   * the events cost nothing; a listener that throws is logged once and never breaks the call.
   * Events are this process's own: a `delete` in another process is not a `delete` here.
   *
   * @example
   * ```ts
   * const off = cache.on('miss', (event) => log.debug({ key: event.key }, 'cache miss'))
   * cache.on('set', 'config', () => reloadConfig())
   * off()
   * ```
   */
  on(type: CacheEventName, listener: CacheEventListener): () => void

  on(type: CacheEventName, key: string, listener: CacheEventListener): () => void

  /** Counters and state since creation. */
  stats(): CacheStats

  /**
   * Waits for running loads and refreshes, closes the invalidation connection and empties the local
   * tier. Does not close the user's Redis client. Later calls throw `CacheClosedError`.
   */
  close(): Promise<void>
}
