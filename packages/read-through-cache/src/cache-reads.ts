import { createBatchedLoad } from './batched-load.js'
import type { CacheCounters } from './cache-counters.js'
import type { EntryCodec } from './entry-codec.js'
import { assertKey, type EntryOptions, type Policy, passesCheck, resolvePolicy } from './entry-policy.js'
import { CacheClosedError, CacheKeyError } from './errors.js'
import type { Flights } from './flights.js'
import type { KeyLayout } from './key-layout.js'
import type { BatchLoader, Loader } from './loader.js'
import type { RunLoad } from './loader-call.js'
import type { LocalEntry } from './local-tier.js'
import type { LocalView } from './local-view.js'
import type { MissRate } from './miss-rate.js'
import type { ResolvedOptions } from './options.js'
import type { RedisTier } from './redis-tier.js'

/** What the read path works with (built once by the facade). */
export interface CacheReadsParts {
  options: Pick<ResolvedOptions, 'freshness' | 'leases'>
  defaultPolicy: Policy
  view: LocalView
  flights: Flights
  tier: RedisTier
  keys: KeyLayout
  codec: EntryCodec
  counters: CacheCounters
  missRate: MissRate
  runLoad: RunLoad
}

/**
 * The reads: local tier, then one plain GET (or MGET), then a flight that takes the key's lease
 * fleet-wide. Documented on `ReadThroughCache`, which delegates here.
 */
export class CacheReads {
  readonly #freshness: ResolvedOptions['freshness']
  readonly #leases: boolean
  readonly #defaultPolicy: Policy
  readonly #view: LocalView
  readonly #flights: Flights
  readonly #tier: RedisTier
  readonly #keys: KeyLayout
  readonly #codec: EntryCodec
  readonly #counters: CacheCounters
  readonly #missRate: MissRate
  readonly #runLoad: RunLoad

  constructor(parts: CacheReadsParts) {
    this.#freshness = parts.options.freshness
    this.#leases = parts.options.leases
    this.#defaultPolicy = parts.defaultPolicy
    this.#view = parts.view
    this.#flights = parts.flights
    this.#tier = parts.tier
    this.#keys = parts.keys
    this.#codec = parts.codec
    this.#counters = parts.counters
    this.#missRate = parts.missRate
    this.#runLoad = parts.runLoad
  }

  async getOrLoad<T>(key: string, loader: Loader<T>, options?: EntryOptions): Promise<T> {
    if (this.#view.closed) throw new CacheClosedError('getOrLoad')
    assertKey('key', key)
    const policy = options === undefined ? this.#defaultPolicy : resolvePolicy(options, this.#freshness)
    if (policy.forceFresh) {
      // Neither a cached value nor a load already running (it may have read before the caller's change).
      const stale = this.#view.local?.peek(key)
      return this.#flights.start(key, loader as Loader<unknown>, policy, { localStale: stale })
        .promise as Promise<T>
    }
    const now = Date.now()
    let stale: LocalEntry | undefined
    if (this.#view.local !== undefined && policy.local) {
      const entry = this.#view.local.get(key, now)
      if (entry !== undefined) {
        if (!passesCheck(policy, entry)) {
          this.#view.local.delete(key)
        } else if (entry.freshUntil > now) {
          this.#counters.hit(key, 'local')
          if (entry.freshUntil - now < policy.refreshThresholdMs)
            this.#flights.refreshEarly(key, loader as Loader<unknown>, policy, entry)
          return entry.value as T
        } else {
          stale = entry
        }
      }
    }
    const running = this.#view.flights.get(key)
    if (running !== undefined) {
      this.#counters.count('coalescedWaits')
      if (stale !== undefined && now < stale.freshUntil + policy.staleWhileRevalidateMs) {
        this.#counters.stale(key)
        return stale.value as T
      }
      return this.#flights.attach(running, () => this.getOrLoad(key, loader, options)) as Promise<T>
    }
    const serveStale = stale !== undefined && now < stale.freshUntil + policy.staleWhileRevalidateMs
    // While most Redis reads miss (a cold cache, a stream of new keys), skip the plain GET: the
    // get-or-lease script reads too, so a miss costs two round trips instead of three.
    if (serveStale || !this.#leases || !this.#tier.available || this.#missRate.high) {
      // With a stale value served here, the flight is a background refresh with no caller of its own.
      const flight = this.#flights.start(key, loader as Loader<unknown>, policy, {
        localStale: stale,
        callers: serveStale ? 0 : 1,
      })
      if (!serveStale) return flight.promise as Promise<T>
      this.#counters.stale(key)
      return (stale as LocalEntry).value as T
    }
    return this.#readThenLoad(key, loader as Loader<unknown>, policy, stale) as Promise<T>
  }

  /**
   * The common case first: a plain GET, as cheap as a hit can be (no script, no flight). Only a
   * miss or a stale value goes on to a flight, whose get-or-lease script joins the load fleet-wide;
   * concurrent misses in this process join that one flight.
   */
  async #readThenLoad(
    key: string,
    loader: Loader<unknown>,
    policy: Policy,
    stale: LocalEntry | undefined,
  ): Promise<unknown> {
    const seq = this.#view.invalidationSeq
    let text: string | null
    try {
      text = await this.#tier.get(this.#keys.entry(key))
    } catch {
      // Redis failed just now: do not pay a second timeout in the flight.
      return (
        this.#flights.join(key, () => this.#readThenLoad(key, loader, policy, stale)) ??
        this.#flights.start(key, loader, policy, { localStale: stale, skipRedis: true }).promise
      )
    }
    if (text !== null) {
      const found = this.#codec.decode(key, text)
      if (found !== undefined && found.freshUntil > Date.now() && passesCheck(policy, found)) {
        this.#counters.hit(key, 'redis')
        this.#missRate.recordHit()
        // Skip the local fill if an invalidation arrived while the GET was out: it may be older.
        if (seq === this.#view.invalidationSeq) this.#view.put(key, found, policy)
        if (found.freshUntil - Date.now() < policy.refreshThresholdMs)
          this.#flights.refreshEarly(key, loader, policy, found)
        return found.value
      }
    }
    return (
      this.#flights.join(key, () => this.#readThenLoad(key, loader, policy, stale)) ??
      this.#flights.start(key, loader, policy, { localStale: stale }).promise
    )
  }

  async getOrLoadMany<T>(
    keys: readonly string[],
    batchLoader: BatchLoader<T>,
    options?: EntryOptions,
  ): Promise<(T | undefined)[]> {
    if (this.#view.closed) throw new CacheClosedError('getOrLoadMany')
    if (!Array.isArray(keys)) throw new CacheKeyError('key', keys)
    for (const key of keys) assertKey('key', key)
    const policy = options === undefined ? this.#defaultPolicy : resolvePolicy(options, this.#freshness)
    const results = new Map<string, T | undefined>()
    const staleLocal = new Map<string, LocalEntry>()
    const now = Date.now()
    let remaining = [...new Set(keys)]
    if (this.#view.local !== undefined && policy.local) {
      remaining = remaining.filter((key) => {
        const entry = this.#view.local?.get(key, now)
        if (entry === undefined) return true
        if (entry.freshUntil <= now) {
          staleLocal.set(key, entry)
          return true
        }
        this.#counters.hit(key, 'local')
        results.set(key, entry.value as T)
        return false
      })
    }
    if (remaining.length > 0 && this.#tier.available) {
      const seq = this.#view.invalidationSeq
      try {
        const texts = await this.#tier.mget(remaining.map((key) => this.#keys.entry(key)))
        const at = Date.now()
        remaining = remaining.filter((key, i) => {
          const text = texts[i]
          const found = text == null ? undefined : this.#codec.decode(key, text)
          if (found === undefined || found.freshUntil <= at) return true
          this.#counters.hit(key, 'redis')
          if (seq === this.#view.invalidationSeq) this.#view.put(key, found, policy)
          results.set(key, found.value as T)
          return false
        })
      } catch {
        // Counted by the tier; the flights below cope with an unavailable Redis.
      }
    }
    if (remaining.length > 0) {
      const batching = createBatchedLoad(batchLoader, new Set(remaining), (signalled) =>
        this.#runLoad(
          `batch of ${remaining.length}`,
          policy.loaderHardTimeoutMs,
          signalled,
          remaining.length,
        ),
      )
      await Promise.all(
        remaining.map(async (key) => {
          try {
            const joined = this.#view.flights.get(key)
            if (joined !== undefined) {
              // Someone else's load: this key will never ask our batch loader.
              batching.hooks.waiting(key, true)
              this.#counters.count('coalescedWaits')
              const retry = async () => (await this.getOrLoadMany([key], batchLoader, options))[0]
              results.set(key, (await this.#flights.attach(joined, retry)) as T | undefined)
            } else {
              const loader = () => batching.load(key)
              const flight = this.#flights.start(key, loader, policy, {
                localStale: staleLocal.get(key),
                hooks: batching.hooks,
              })
              results.set(key, (await flight.promise) as T | undefined)
            }
          } finally {
            batching.finished(key)
          }
        }),
      )
    }
    return keys.map((key) => results.get(key))
  }

  /** `get` for many keys: the local tier, then one MGET for the rest; never loads. */
  async mget<T>(keys: readonly string[], options?: Pick<EntryOptions, 'local'>): Promise<(T | undefined)[]> {
    if (this.#view.closed) throw new CacheClosedError('mget')
    if (!Array.isArray(keys)) throw new CacheKeyError('key', keys)
    for (const key of keys) assertKey('key', key)
    const local = options?.local !== false ? this.#view.local : undefined
    const now = Date.now()
    const results = new Map<string, T>()
    const remote: string[] = []
    for (const key of new Set(keys)) {
      const entry = local?.get(key, now)
      if (entry !== undefined && entry.freshUntil > now && !entry.negative) {
        this.#counters.hit(key, 'local')
        results.set(key, entry.value as T)
      } else remote.push(key)
    }
    if (remote.length > 0) {
      const seq = this.#view.invalidationSeq
      let texts: (string | null)[] = []
      try {
        texts = await this.#tier.mget(remote.map((key) => this.#keys.entry(key)))
      } catch {
        // Counted by the tier: an unreachable Redis reads as misses, as in `get`.
      }
      const at = Date.now()
      remote.forEach((key, i) => {
        const text = texts[i]
        const found = text == null ? undefined : this.#codec.decode(key, text)
        if (found === undefined || found.freshUntil <= at || found.negative) {
          this.#counters.miss(key)
          return
        }
        this.#counters.hit(key, 'redis')
        if (local !== undefined && seq === this.#view.invalidationSeq)
          this.#view.put(key, found, this.#defaultPolicy)
        results.set(key, found.value as T)
      })
    }
    return keys.map((key) => results.get(key))
  }

  async get<T>(key: string, options?: Pick<EntryOptions, 'local'>): Promise<T | undefined> {
    if (this.#view.closed) throw new CacheClosedError('get')
    assertKey('key', key)
    const useLocal = this.#view.local !== undefined && options?.local !== false
    const now = Date.now()
    if (useLocal) {
      const entry = this.#view.local?.get(key, now)
      if (entry !== undefined && entry.freshUntil > now) {
        this.#counters.hit(key, 'local')
        return entry.value as T
      }
    }
    const seq = this.#view.invalidationSeq
    let text: string | null
    try {
      text = await this.#tier.get(this.#keys.entry(key))
    } catch {
      this.#counters.miss(key)
      return undefined
    }
    const found = text === null ? undefined : this.#codec.decode(key, text)
    if (found === undefined || found.freshUntil <= Date.now()) {
      this.#counters.miss(key)
      return undefined
    }
    this.#counters.hit(key, 'redis')
    if (useLocal && seq === this.#view.invalidationSeq) this.#view.put(key, found, this.#defaultPolicy)
    return found.value as T
  }
}
