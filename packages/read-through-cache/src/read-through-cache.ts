import type { CacheStats } from './cache-counters.js'
import { type CacheEventListener, type CacheEventName, EVENT_NAMES } from './cache-events.js'
import { buildCacheParts, type CacheParts } from './cache-parts.js'
import type { MsetEntry } from './cache-writes.js'
import type { EntryOptions } from './entry-policy.js'
import { CacheClosedError, CacheKeyError, CacheOptionsError } from './errors.js'
import type { BatchLoader, Loader } from './loader.js'
import type { LocalView } from './local-view.js'
import { type ReadThroughCacheOptions, resolveOptions } from './options.js'
import { waitUntilReady } from './ready-wait.js'

/** Each cache's local view, for the test hooks below (not on the public object). */
const views = new WeakMap<ReadThroughCache, LocalView>()

/**
 * A read-through cache over Redis with an optional in-process tier. Create it with
 * `createReadThroughCache`. The work happens in `CacheReads`, `CacheWrites` and the flights
 * (see `cache-parts.ts`); this class is the public surface and its lifecycle.
 */
export class ReadThroughCache {
  readonly #redis: ReadThroughCacheOptions['redis']
  readonly #parts: CacheParts
  /** Rejecters of `ready()` calls still waiting, so `close()` ends them (and their timers) at once. */
  readonly #readyWaiters = new Set<(error: Error) => void>()

  constructor(options: ReadThroughCacheOptions) {
    const resolved = resolveOptions(options)
    this.#redis = resolved.redis
    this.#parts = buildCacheParts(resolved)
    views.set(this, this.#parts.view)
  }

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
  async ready(timeoutMs = 10_000): Promise<void> {
    if (this.#parts.view.closed) throw new CacheClosedError('ready')
    await waitUntilReady(this.#redis, this.#parts.bus?.ready, timeoutMs, this.#readyWaiters)
  }

  /**
   * Returns the cached value of `key`, or calls `loader` once (per key, across every process that
   * shares the Redis) and caches what it returns.
   *
   * @example
   * ```ts
   * const user = await cache.getOrLoad(`user:${id}`, () => db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst(), { ttlMs: 30_000, tags: [`user:${id}`] })
   * ```
   */
  getOrLoad<T>(key: string, loader: Loader<T>, options?: EntryOptions): Promise<T> {
    return this.#parts.reads.getOrLoad(key, loader, options)
  }

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
  ): Promise<(T | undefined)[]> {
    return this.#parts.reads.getOrLoadMany(keys, batchLoader, options)
  }

  /**
   * Reads `key` without loading: the fresh value, or `undefined` (also when Redis is unreachable).
   *
   * @example
   * ```ts
   * const cached = await cache.get<User>('user:1')
   * ```
   */
  get<T>(key: string, options?: Pick<EntryOptions, 'local'>): Promise<T | undefined> {
    return this.#parts.reads.get<T>(key, options)
  }

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
  mget<T>(keys: readonly string[], options?: Pick<EntryOptions, 'local'>): Promise<(T | undefined)[]> {
    return this.#parts.reads.mget<T>(keys, options)
  }

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
  mset<T>(entries: readonly MsetEntry<T>[]): Promise<void> {
    return this.#parts.writes.mset(entries)
  }

  /**
   * Whether `key` has a fresh cached value (locally or in Redis); never loads. A cached "not found"
   * counts as no value.
   *
   * @example
   * ```ts
   * if (!(await cache.has('report:2024'))) queueReportBuild()
   * ```
   */
  async has(key: string): Promise<boolean> {
    if (this.#parts.view.closed) throw new CacheClosedError('has')
    return (await this.get(key)) !== undefined
  }

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
  set<T>(key: string, value: T, options?: EntryOptions): Promise<void> {
    return this.#parts.writes.set(key, value, options)
  }

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
  delete(key: string): Promise<void> {
    return this.#parts.writes.delete(key)
  }

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
  expire(key: string): Promise<void> {
    return this.#parts.writes.expire(key)
  }

  /**
   * `delete` for many keys at once: one round of DELs and one invalidation message. If Redis
   * cannot be reached every key is queued for replay and `CacheUnavailableError` is thrown.
   *
   * @example
   * ```ts
   * await cache.deleteMany(['user:1', 'user:2'])
   * ```
   */
  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#parts.writes.deleteMany(keys)
  }

  /**
   * Removes every entry written with `tag`, everywhere, with the same no-stale-set guarantee as
   * `delete` (a load with this tag that started before the call cannot keep its value).
   *
   * @example
   * ```ts
   * await cache.deleteByTag('team:7')
   * ```
   */
  deleteByTag(tag: string): Promise<void> {
    return this.#parts.writes.deleteByTag(tag)
  }

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
  clear(): Promise<number> {
    return this.#parts.writes.clear()
  }

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
  on(
    type: CacheEventName,
    keyOrListener: string | CacheEventListener,
    maybeListener?: CacheEventListener,
  ): () => void {
    if (!EVENT_NAMES.includes(type)) {
      throw new CacheOptionsError(
        'on',
        `unknown event ${JSON.stringify(type)} (one of ${EVENT_NAMES.join(', ')})`,
      )
    }
    const key = typeof keyOrListener === 'function' ? undefined : keyOrListener
    const listener = typeof keyOrListener === 'function' ? keyOrListener : maybeListener
    if (key !== undefined && (typeof key !== 'string' || key === '')) throw new CacheKeyError('key', key)
    if (typeof listener !== 'function') throw new CacheOptionsError('on', 'the listener must be a function')
    return this.#parts.counters.events.on(type, key, listener)
  }

  /** Counters and state since creation. */
  stats(): CacheStats {
    const { counters, breaker, view, loads, pending } = this.#parts
    return {
      ...counters.snapshot(),
      circuit: breaker.state,
      timesCircuitOpened: breaker.timesOpened,
      localEntries: view.local?.size ?? 0,
      localBytes: view.local?.bytes ?? 0,
      localEvictions: view.local?.evictions ?? 0,
      activeLoads: loads.active,
      peakConcurrentLoads: loads.peak,
      pendingInvalidations: pending.size,
    }
  }

  /**
   * Waits for running loads and refreshes, closes the invalidation connection and empties the local
   * tier. Does not close the user's Redis client. Later calls throw `CacheClosedError`.
   */
  async close(): Promise<void> {
    const { view, replayDriver, pending, tier, bus } = this.#parts
    if (view.closed) return
    view.closed = true
    for (const abort of this.#readyWaiters) abort(new CacheClosedError('ready'))
    // No new flight can start now; wait until the running ones (and their writes) are over.
    while (view.running.size > 0) await view.settled()
    await replayDriver.close()
    // One last bounded attempt: what is still queued is lost with the process.
    if (pending.size > 0) await tier.replayPending(true)
    await bus?.close()
    view.close()
  }
}

/** Test hook, not exported by the package: whether `cache`'s local tier holds `key` (fresh or stale). */
export function hasLocal(cache: ReadThroughCache, key: string): boolean {
  return views.get(cache)?.has(key) ?? false
}

/**
 * Test hook, not exported by the package: resolves when every load, background refresh and cache
 * write `cache` started so far has finished (callers are answered before the write to Redis ends).
 */
export async function settled(cache: ReadThroughCache): Promise<void> {
  await views.get(cache)?.settled()
}
