import type { CacheStats } from './cache-counters.js'
import { type CacheEventListener, type CacheEventName, EVENT_NAMES } from './cache-events.js'
import type { ReadThroughCache as CacheApi } from './cache-interface.js'
import { buildCacheParts, type CacheParts } from './cache-parts.js'
import type { MsetEntry } from './cache-writes.js'
import type { EntryOptions } from './entry-policy.js'
import { CacheClosedError, CacheKeyError, CacheOptionsError } from './errors.js'
import type { BatchLoader, Loader } from './loader.js'
import type { LocalView } from './local-view.js'
import { type ReadThroughCacheOptions, resolveOptions } from './options.js'
import { waitUntilReady } from './ready-wait.js'

/** Each cache's local view, for the test hooks below (not on the public object). */
const views = new WeakMap<object, LocalView>()

/**
 * The cache behind `createReadThroughCache`. The work happens in `CacheReads`, `CacheWrites` and
 * the flights (see `cache-parts.ts`); this class is the public surface and its lifecycle, documented
 * on the `ReadThroughCache` interface.
 */
export class CacheFacade implements CacheApi {
  readonly #redis: ReadThroughCacheOptions['redis']
  readonly #parts: CacheParts
  /** Rejecters of `ready()` calls still waiting, so `close()` ends them (and their timers) at once. */
  readonly #readyWaiters = new Set<(error: Error) => void>()
  /** Writes and invalidations still under way, so `close()` lets them reach Redis first. */
  readonly #writes = new Set<Promise<unknown>>()

  constructor(options: ReadThroughCacheOptions) {
    const resolved = resolveOptions(options)
    this.#redis = resolved.redis
    this.#parts = buildCacheParts(resolved)
    views.set(this, this.#parts.view)
  }

  async ready(timeoutMs = 10_000): Promise<void> {
    if (this.#parts.view.closed) throw new CacheClosedError('ready')
    // Memory-only: nothing to connect to.
    if (this.#redis === undefined) return
    await waitUntilReady(this.#redis, this.#parts.bus?.ready, timeoutMs, this.#readyWaiters)
  }

  getOrLoad<T>(key: string, loader: Loader<T>, options?: EntryOptions): Promise<T> {
    return this.#parts.reads.getOrLoad(key, loader, options)
  }

  getOrLoadMany<T>(
    keys: readonly string[],
    batchLoader: BatchLoader<T>,
    options?: EntryOptions,
  ): Promise<(T | undefined)[]> {
    return this.#parts.reads.getOrLoadMany(keys, batchLoader, options)
  }

  get<T>(key: string, options?: Pick<EntryOptions, 'local'>): Promise<T | undefined> {
    return this.#parts.reads.get<T>(key, options)
  }

  mget<T>(keys: readonly string[], options?: Pick<EntryOptions, 'local'>): Promise<(T | undefined)[]> {
    return this.#parts.reads.mget<T>(keys, options)
  }

  mset<T>(entries: readonly MsetEntry<T>[]): Promise<void> {
    return this.#track(this.#parts.writes.mset(entries))
  }

  async has(key: string): Promise<boolean> {
    if (this.#parts.view.closed) throw new CacheClosedError('has')
    return (await this.get(key)) !== undefined
  }

  set<T>(key: string, value: T, options?: EntryOptions): Promise<void> {
    return this.#track(this.#parts.writes.set(key, value, options))
  }

  delete(key: string): Promise<void> {
    return this.#track(this.#parts.writes.delete(key))
  }

  expire(key: string): Promise<void> {
    return this.#track(this.#parts.writes.expire(key))
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#track(this.#parts.writes.deleteMany(keys))
  }

  deleteByTag(tag: string): Promise<void> {
    return this.#track(this.#parts.writes.deleteByTag(tag))
  }

  clear(): Promise<number> {
    return this.#track(this.#parts.writes.clear())
  }

  /**
   * Remembers a write until it settles. Without it `close()` resolved while a `set` or an `mset`
   * was still being sent, and an app that quits its client right after `close()` (the quick
   * start does) lost the write and the invalidation queued for it.
   */
  #track<T>(write: Promise<T>): Promise<T> {
    this.#writes.add(write)
    const done = () => this.#writes.delete(write)
    write.then(done, done)
    return write
  }

  on(type: CacheEventName, listener: CacheEventListener): () => void
  on(type: CacheEventName, key: string, listener: CacheEventListener): () => void
  on(
    type: CacheEventName,
    keyOrListener: string | CacheEventListener,
    maybeListener?: CacheEventListener,
  ): () => void {
    if (this.#parts.view.closed) throw new CacheClosedError('on')
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

  async close(): Promise<void> {
    const { view, replayDriver, pending, tier, bus } = this.#parts
    if (view.closed) return
    view.closed = true
    for (const abort of this.#readyWaiters) abort(new CacheClosedError('ready'))
    // No new flight or write can start now; wait until the running ones are over.
    while (view.running.size > 0) await view.settled()
    await Promise.allSettled(this.#writes)
    await replayDriver?.close()
    // One last bounded attempt: what is still queued is lost with the process.
    if (pending.size > 0) await tier.replayPending(true)
    await bus?.close()
    view.close()
  }
}

/**
 * @deprecated Use `createReadThroughCache(options)`, which returns the same `ReadThroughCache`
 * (the convention of every @scale package: a factory returning an interface). `new
 * ReadThroughCache(options)` and `instanceof ReadThroughCache` keep working until the next minor.
 */
export const ReadThroughCache: new (options: ReadThroughCacheOptions) => CacheApi = CacheFacade

/** The cache's interface (see `cache-interface.ts`), exported under the same name as the deprecated constructor. */
export type ReadThroughCache = CacheApi

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
