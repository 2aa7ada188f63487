import { randomBytes } from 'node:crypto'
import { createBatchedLoad } from './batched-load.js'
import { CacheCounters, type CacheStats } from './cache-counters.js'
import { CircuitBreaker } from './circuit-breaker.js'
import { EntryCodec } from './entry-codec.js'
import {
  assertKey,
  defaultPolicy,
  type EntryOptions,
  type Policy,
  passesCheck,
  resolvePolicy,
} from './entry-policy.js'
import { CacheClosedError, CacheKeyError, CacheUnavailableError } from './errors.js'
import { createFlight, type Flight, type FlightHooks } from './flight.js'
import { FlightLoader } from './flight-loader.js'
import { InvalidationBus } from './invalidation-bus.js'
import { KeyLayout } from './key-layout.js'
import { LeaseTokens } from './lease-tokens.js'
import type { BatchLoader, Loader } from './loader.js'
import { createRunLoad, type RunLoad } from './loader-call.js'
import { type LocalEntry, LocalTier } from './local-tier.js'
import { MissRate } from './miss-rate.js'
import {
  type CacheCounter,
  type ReadThroughCacheOptions,
  type ResolvedOptions,
  resolveOptions,
} from './options.js'
import { PendingInvalidations } from './pending-invalidations.js'
import { waitUntilReady } from './ready-wait.js'
import { type RedisClient, RedisTier } from './redis-tier.js'
import { ReplayDriver } from './replay-driver.js'
import { Semaphore } from './semaphore.js'
import { TagBookkeeping } from './tag-bookkeeping.js'

/**
 * A read-through cache over Redis with an optional in-process tier. Create it with
 * `createReadThroughCache`.
 */
export class ReadThroughCache {
  readonly #options: ResolvedOptions
  readonly #keys: KeyLayout
  readonly #tier: RedisTier
  readonly #breaker: CircuitBreaker
  readonly #local: LocalTier | undefined
  readonly #bus: InvalidationBus | undefined
  readonly #loads: Semaphore
  /** Flights that callers can still join, by key. */
  readonly #flights = new Map<string, Flight>()
  /** Every flight still running (including refreshes whose callers were already answered), to mark on invalidation. */
  readonly #running = new Set<Flight>()
  readonly #tokens: LeaseTokens
  readonly #flightLoader: FlightLoader
  readonly #pending: PendingInvalidations
  readonly #replayDriver: ReplayDriver
  readonly #tags: TagBookkeeping
  readonly #codec: EntryCodec
  /** Rejecters of `ready()` calls still waiting, so `close()` ends them (and their timers) at once. */
  readonly #readyWaiters = new Set<(error: Error) => void>()
  readonly #defaultPolicy: Policy
  readonly #origin = randomBytes(6).toString('base64url')
  readonly #counters: CacheCounters
  /** Bumped by every invalidation this process sees; a plain `get` fills the local tier only if it did not move. */
  #invalidationSeq = 0
  /** The invalidation channel is subscribed: the local tier hears of every invalidation. */
  #subscribed = false
  readonly #missRate = new MissRate()
  readonly #localTtlMs: number | undefined
  readonly #outageTtlMs: number
  #closed = false

  constructor(options: ReadThroughCacheOptions) {
    this.#options = resolveOptions(options)
    const o = this.#options
    this.#keys = new KeyLayout(o.prefix)
    this.#counters = new CacheCounters(o.metrics, o.logger)
    this.#codec = new EntryCodec(o.serializer, o.logger)
    this.#localTtlMs = o.local === false ? undefined : o.local.ttlMs
    this.#outageTtlMs = o.local === false ? 0 : o.local.outageTtlMs
    this.#defaultPolicy = defaultPolicy(o.freshness)
    this.#breaker = new CircuitBreaker({
      failureThreshold: o.failureThreshold,
      openDurationMs: o.openDurationMs,
      onStateChange: (state) => {
        this.#counters.circuitState(state)
        if (state === 'open') {
          o.logger?.warn({ circuit: state }, '[@scale/read-through-cache] Redis circuit opened')
          this.#local?.capFreshness(Date.now() + this.#outageTtlMs)
        }
      },
    })
    this.#tier = new RedisTier({
      client: o.redis,
      breaker: this.#breaker,
      commandTimeoutMs: o.commandTimeoutMs,
      coalesceWrites: o.coalesceWrites,
      onProbe: () => this.#pending.replay(),
      hasPending: () => this.#pending.size > 0,
      onError: () => this.#count('redisErrors'),
    })
    this.#pending = new PendingInvalidations({
      tier: this.#tier,
      keys: this.#keys,
      logger: o.logger,
      busMessage: o.local === false ? undefined : (keys) => InvalidationBus.encode(this.#origin, keys),
      onQueued: () => {
        this.#count('invalidationsQueued')
        this.#replayDriver.queued()
      },
    })
    this.#replayDriver = new ReplayDriver({
      client: o.redis,
      intervalMs: Math.max(50, Math.min(250, o.openDurationMs)),
      commandTimeoutMs: o.commandTimeoutMs,
      hasPending: () => this.#pending.size > 0,
      replay: (force) => this.#tier.replayPending(force),
      replayVia: (connection) => this.#pending.replay(connection),
    })
    this.#tags = new TagBookkeeping({
      tier: this.#tier,
      keys: this.#keys,
      publish: (keys) => this.#publish(keys),
      onStaleSetPrevented: () => this.#count('staleSetsPrevented'),
    })
    this.#loads = new Semaphore(o.maxConcurrentLoads)
    this.#runLoad = createRunLoad(this.#loads, () => this.#count('loads'))
    this.#tokens = new LeaseTokens(this.#origin)
    this.#flightLoader = new FlightLoader({
      options: o,
      tier: this.#tier,
      keys: this.#keys,
      codec: this.#codec,
      tags: this.#tags,
      tokens: this.#tokens,
      pending: this.#pending,
      missRate: this.#missRate,
      count: (counter, by) => this.#count(counter, by),
      runLoad: this.#runLoad,
      putLocal: (key, entry, policy, flight) => this.#putLocal(key, entry, policy, flight),
      isClosed: () => this.#closed,
      publish: (keys) => this.#publish(keys),
    })
    if (o.local !== false) {
      this.#local = new LocalTier(o.local)
      this.#bus = new InvalidationBus({
        client: o.redis,
        channel: this.#keys.channel,
        origin: this.#origin,
        onAll: () => this.#invalidateAllLocally(),
        onKeys: (keys) => {
          for (const key of keys) this.#invalidateLocally(key)
        },
        onSubscribed: () => {
          // Whatever was published while we were not subscribed is lost: start the local tier
          // afresh, and keep a GET sent before now or a load running now from filling it with a
          // value whose invalidation we may have missed.
          this.#invalidateAllLocally()
          this.#subscribed = true
        },
        onDisconnected: () => {
          // Invalidations may be missed from now on: bound how long what we hold is trusted.
          this.#subscribed = false
          this.#local?.capFreshness(Date.now() + this.#outageTtlMs)
        },
        onServerBack: () => this.#nudgeReconnect(),
        onError: () => this.#count('redisErrors'),
      })
    }
  }

  /**
   * The invalidation connection is back, so the server is. With invalidations waiting for replay,
   * a client still sleeping in its reconnect back-off (ioredis' default grows to 2 s) is asked to
   * reconnect now: meanwhile every other process already reads the old values from Redis. Its
   * 'ready' then triggers the replay. Only a single `Redis` (a `Cluster` reconnects by its own
   * rules), and only in the `reconnecting` state, where ioredis' `connect()` starts at once.
   */
  #nudgeReconnect(): void {
    const client = this.#options.redis as RedisClient & { isCluster?: boolean }
    if (this.#pending.size === 0 || client.isCluster === true || client.status !== 'reconnecting') return
    client.connect().catch(() => {})
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
    if (this.#closed) throw new CacheClosedError('ready')
    await waitUntilReady(this.#options.redis, this.#bus?.ready, timeoutMs, this.#readyWaiters)
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
  async getOrLoad<T>(key: string, loader: Loader<T>, options?: EntryOptions): Promise<T> {
    if (this.#closed) throw new CacheClosedError('getOrLoad')
    assertKey('key', key)
    const policy =
      options === undefined ? this.#defaultPolicy : resolvePolicy(options, this.#options.freshness)
    if (policy.forceFresh) {
      // Neither a cached value nor a load already running (it may have read before the caller's change).
      const stale = this.#local?.peek(key)
      return this.#startFlight(key, loader as Loader<unknown>, policy, stale, false).promise as Promise<T>
    }
    const now = Date.now()
    let stale: LocalEntry | undefined
    if (this.#local !== undefined && policy.local) {
      const entry = this.#local.get(key, now)
      if (entry !== undefined) {
        if (!passesCheck(policy, entry)) {
          this.#local.delete(key)
        } else if (entry.freshUntil > now) {
          this.#count('hitsLocal')
          if (entry.freshUntil - now < policy.refreshThresholdMs)
            this.#refreshEarly(key, loader as Loader<unknown>, policy, entry)
          return entry.value as T
        } else {
          stale = entry
        }
      }
    }
    const running = this.#flights.get(key)
    if (running !== undefined) {
      this.#count('coalescedWaits')
      if (stale !== undefined && now < stale.freshUntil + policy.staleWhileRevalidateMs) {
        this.#count('staleServed')
        return stale.value as T
      }
      return this.#attach(running) as Promise<T>
    }
    const serveStale = stale !== undefined && now < stale.freshUntil + policy.staleWhileRevalidateMs
    // While most Redis reads miss (a cold cache, a stream of new keys), skip the plain GET: the
    // get-or-lease script reads too, so a miss costs two round trips instead of three.
    if (serveStale || !this.#options.leases || !this.#tier.available || this.#missRate.high) {
      // With a stale value served here, the flight is a background refresh with no caller of its own.
      const flight = this.#startFlight(
        key,
        loader as Loader<unknown>,
        policy,
        stale,
        false,
        undefined,
        serveStale ? 0 : 1,
      )
      if (!serveStale) return flight.promise as Promise<T>
      this.#count('staleServed')
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
    const seq = this.#invalidationSeq
    let text: string | null
    try {
      text = await this.#tier.get(this.#keys.entry(key))
    } catch {
      // Redis failed just now: do not pay a second timeout in the flight.
      return this.#join(key) ?? this.#startFlight(key, loader, policy, stale, true).promise
    }
    if (text !== null) {
      const found = this.#codec.decode(key, text)
      if (found !== undefined && found.freshUntil > Date.now() && passesCheck(policy, found)) {
        this.#count('hitsRedis')
        this.#missRate.recordHit()
        // Skip the local fill if an invalidation arrived while the GET was out: it may be older.
        if (seq === this.#invalidationSeq) this.#putLocal(key, found, policy)
        if (found.freshUntil - Date.now() < policy.refreshThresholdMs)
          this.#refreshEarly(key, loader, policy, found)
        return found.value
      }
    }
    return this.#join(key) ?? this.#startFlight(key, loader, policy, stale, false).promise
  }

  /**
   * Starts one background refresh of a value about to expire (unless a load of the key already
   * runs here): it takes the lease over the still-fresh value, so one process in the fleet
   * refreshes, and the new value replaces the old one in every local tier.
   */
  #refreshEarly(key: string, loader: Loader<unknown>, policy: Policy, current: LocalEntry): void {
    if (this.#closed || this.#flights.has(key)) return
    const flight = this.#startFlight(
      key,
      loader,
      { ...policy, refreshEarly: true },
      current,
      false,
      undefined,
      0,
    )
    flight.replacesFresh = true
  }

  #join(key: string): Promise<unknown> | undefined {
    const running = this.#flights.get(key)
    if (running === undefined) return undefined
    this.#count('coalescedWaits')
    return this.#attach(running)
  }

  /** One more caller waits on `flight`; if its answer was already a stale value, this caller gets that too. */
  #attach(flight: Flight): Promise<unknown> {
    flight.callers++
    if (flight.servedStale) this.#count('staleServed')
    return flight.promise
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
  async getOrLoadMany<T>(
    keys: readonly string[],
    batchLoader: BatchLoader<T>,
    options?: EntryOptions,
  ): Promise<(T | undefined)[]> {
    if (this.#closed) throw new CacheClosedError('getOrLoadMany')
    if (!Array.isArray(keys)) throw new CacheKeyError('key', keys)
    for (const key of keys) assertKey('key', key)
    const policy =
      options === undefined ? this.#defaultPolicy : resolvePolicy(options, this.#options.freshness)
    const results = new Map<string, T | undefined>()
    const staleLocal = new Map<string, LocalEntry>()
    const now = Date.now()
    let remaining = [...new Set(keys)]
    if (this.#local !== undefined && policy.local) {
      remaining = remaining.filter((key) => {
        const entry = this.#local?.get(key, now)
        if (entry === undefined) return true
        if (entry.freshUntil <= now) {
          staleLocal.set(key, entry)
          return true
        }
        this.#count('hitsLocal')
        results.set(key, entry.value as T)
        return false
      })
    }
    if (remaining.length > 0 && this.#tier.available) {
      const seq = this.#invalidationSeq
      try {
        const texts = await this.#tier.mget(remaining.map((key) => this.#keys.entry(key)))
        const at = Date.now()
        remaining = remaining.filter((key, i) => {
          const text = texts[i]
          const found = text == null ? undefined : this.#codec.decode(key, text)
          if (found === undefined || found.freshUntil <= at) return true
          this.#count('hitsRedis')
          if (seq === this.#invalidationSeq) this.#putLocal(key, found, policy)
          results.set(key, found.value as T)
          return false
        })
      } catch {
        // Counted by the tier; the flights below cope with an unavailable Redis.
      }
    }
    if (remaining.length > 0) {
      const batching = createBatchedLoad(batchLoader, new Set(remaining), (signalled) =>
        this.#runLoad(`batch of ${remaining.length}`, policy.loaderHardTimeoutMs, signalled),
      )
      await Promise.all(
        remaining.map(async (key) => {
          try {
            const joined = this.#flights.get(key)
            if (joined !== undefined) {
              // Someone else's load: this key will never ask our batch loader.
              batching.hooks.waiting(key, true)
              this.#count('coalescedWaits')
              results.set(key, (await this.#attach(joined)) as T | undefined)
            } else {
              const loader = () => batching.load(key)
              const flight = this.#startFlight(
                key,
                loader,
                policy,
                staleLocal.get(key),
                false,
                batching.hooks,
              )
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

  /**
   * Reads `key` without loading: the fresh value, or `undefined` (also when Redis is unreachable).
   *
   * @example
   * ```ts
   * const cached = await cache.get<User>('user:1')
   * ```
   */
  async get<T>(key: string, options?: Pick<EntryOptions, 'local'>): Promise<T | undefined> {
    if (this.#closed) throw new CacheClosedError('get')
    assertKey('key', key)
    const useLocal = this.#local !== undefined && options?.local !== false
    const now = Date.now()
    if (useLocal) {
      const entry = this.#local?.get(key, now)
      if (entry !== undefined && entry.freshUntil > now) {
        this.#count('hitsLocal')
        return entry.value as T
      }
    }
    const seq = this.#invalidationSeq
    let text: string | null
    try {
      text = await this.#tier.get(this.#keys.entry(key))
    } catch {
      this.#count('misses')
      return undefined
    }
    const found = text === null ? undefined : this.#codec.decode(key, text)
    if (found === undefined || found.freshUntil <= Date.now()) {
      this.#count('misses')
      return undefined
    }
    this.#count('hitsRedis')
    if (useLocal && seq === this.#invalidationSeq) this.#putLocal(key, found, this.#defaultPolicy)
    return found.value as T
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
  async set<T>(key: string, value: T, options?: EntryOptions): Promise<void> {
    if (this.#closed) throw new CacheClosedError('set')
    assertKey('key', key)
    const policy =
      options === undefined ? this.#defaultPolicy : resolvePolicy(options, this.#options.freshness)
    const entry = this.#codec.build(key, value, policy)
    if (entry === undefined) return this.delete(key)
    const keys = this.#keys.entry(key)
    this.#invalidateLocally(key)
    this.#putLocal(key, entry, policy)
    try {
      await this.#tier.set(keys, this.#codec.text(entry), Math.max(1, entry.staleUntil - Date.now()))
      if (policy.tags.length > 0) await this.#tags.addMembers(policy, key)
      await this.#publish([key])
    } catch (error) {
      // Redis may still hold the previous value and other processes their old copies: queue an
      // invalidation so that, once Redis answers, everyone reloads instead of serving the old value.
      this.#pending.queue({ kind: 'key', key })
      throw new CacheUnavailableError('set', { key, queuedForReplay: true }, error)
    }
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
  async delete(key: string): Promise<void> {
    if (this.#closed) throw new CacheClosedError('delete')
    assertKey('key', key)
    this.#invalidateLocally(key)
    try {
      await this.#tier.invalidate([this.#keys.entry(key)])
      await this.#publish([key])
    } catch (error) {
      this.#pending.queue({ kind: 'key', key })
      throw new CacheUnavailableError('delete', { key, queuedForReplay: true }, error)
    }
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
  async expire(key: string): Promise<void> {
    if (this.#closed) throw new CacheClosedError('expire')
    assertKey('key', key)
    const now = Date.now()
    const local = this.#local?.peek(key)
    this.#invalidateLocally(key)
    // Keep our own copy as a stale one (SWR and grace may serve it); other processes drop theirs
    // and find the stale value in Redis.
    if (local !== undefined && local.staleUntil > now && this.#local !== undefined) {
      this.#local.set(key, { ...local, freshUntil: Math.min(local.freshUntil, now) })
    }
    try {
      await this.#tier.expire(this.#keys.entry(key), now)
      await this.#publish([key])
    } catch (error) {
      this.#pending.queue({ kind: 'key', key })
      throw new CacheUnavailableError('expire', { key, queuedForReplay: true }, error)
    }
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
  async clear(): Promise<number> {
    if (this.#closed) throw new CacheClosedError('clear')
    this.#invalidateAllLocally()
    for (const flight of this.#flights.values()) flight.invalidated = true
    this.#flights.clear()
    try {
      const removed = await this.#tier.clearPrefix(this.#keys.prefix)
      if (this.#bus !== undefined) {
        await this.#tier.publish(this.#keys.channel, InvalidationBus.encodeAll(this.#origin))
      }
      return removed
    } catch (error) {
      throw new CacheUnavailableError('clear', { prefix: this.#keys.prefix, queuedForReplay: false }, error)
    }
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
    if (this.#closed) throw new CacheClosedError('has')
    return (await this.get(key)) !== undefined
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
  async deleteMany(keys: readonly string[]): Promise<void> {
    if (this.#closed) throw new CacheClosedError('deleteMany')
    if (!Array.isArray(keys)) throw new CacheKeyError('key', keys)
    for (const key of keys) assertKey('key', key)
    const unique = [...new Set(keys)]
    if (unique.length === 0) return
    for (const key of unique) this.#invalidateLocally(key)
    try {
      await this.#tier.invalidate(unique.map((key) => this.#keys.entry(key)))
      await this.#publish(unique)
    } catch (error) {
      for (const key of unique) this.#pending.queue({ kind: 'key', key })
      throw new CacheUnavailableError('deleteMany', { keys: unique, queuedForReplay: true }, error)
    }
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
  async deleteByTag(tag: string): Promise<void> {
    if (this.#closed) throw new CacheClosedError('deleteByTag')
    assertKey('tag', tag)
    try {
      const members = await this.#tags.takeMembers(tag)
      for (const key of members) this.#invalidateLocally(key)
      if (members.length > 0) {
        await this.#tier.invalidate(members.map((key) => this.#keys.entry(key)))
        await this.#publish(members)
      }
    } catch (error) {
      this.#pending.queue({ kind: 'tag', tag })
      throw new CacheUnavailableError('deleteByTag', { tag, queuedForReplay: true }, error)
    }
  }

  /** Counters and state since creation. */
  stats(): CacheStats {
    return {
      ...this.#counters.snapshot(),
      circuit: this.#breaker.state,
      timesCircuitOpened: this.#breaker.timesOpened,
      localEntries: this.#local?.size ?? 0,
      localBytes: this.#local?.bytes ?? 0,
      localEvictions: this.#local?.evictions ?? 0,
      activeLoads: this.#loads.active,
      peakConcurrentLoads: this.#loads.peak,
      pendingInvalidations: this.#pending.size,
    }
  }

  /** Whether the local tier holds `key` right now (fresh or stale); for tests and debugging. */
  hasLocal(key: string): boolean {
    return this.#local?.peek(key) !== undefined
  }

  /** Resolves when every load and refresh started so far has finished (tests, graceful shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.#running].map((flight) => flight.done))
  }

  /**
   * Waits for running loads and refreshes, closes the invalidation connection and empties the local
   * tier. Does not close the user's Redis client. Later calls throw `CacheClosedError`.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const abort of this.#readyWaiters) abort(new CacheClosedError('ready'))
    // No new flight can start now; wait until the running ones (and their writes) are over.
    while (this.#running.size > 0) await this.settled()
    await this.#replayDriver.close()
    // One last bounded attempt: what is still queued is lost with the process.
    if (this.#pending.size > 0) await this.#tier.replayPending(true)
    await this.#bus?.close()
    this.#local?.clear()
    this.#subscribed = false
  }

  // ---- flights ------------------------------------------------------------------------------

  #startFlight(
    key: string,
    loader: Loader<unknown>,
    policy: Policy,
    localStale: LocalEntry | undefined,
    skipRedis: boolean,
    hooks?: FlightHooks,
    callers = 1,
  ): Flight {
    const detach = (flight: Flight) => {
      if (this.#flights.get(key) === flight) this.#flights.delete(key)
    }
    const flight = createFlight(key, hooks, detach, callers)
    this.#flights.set(key, flight)
    this.#running.add(flight)
    flight.done = this.#runFlight(flight, loader, policy, localStale, skipRedis, detach)
    return flight
  }

  async #runFlight(
    flight: Flight,
    loader: Loader<unknown>,
    policy: Policy,
    localStale: LocalEntry | undefined,
    skipRedis: boolean,
    detach: (flight: Flight) => void,
  ): Promise<void> {
    try {
      await this.#flightLoader.load(flight, loader, policy, localStale, skipRedis)
    } catch (error) {
      flight.reject(error)
    } finally {
      detach(flight)
      this.#running.delete(flight)
      if (flight.token !== undefined) this.#tokens.retire(flight.token)
    }
  }

  /** Runs a loader call (one key's or a whole batch's) under the cap and the hard timeout, and counts it. */
  readonly #runLoad: RunLoad

  // ---- entries ------------------------------------------------------------------------------

  #putLocal(key: string, entry: LocalEntry, policy: Policy, flight?: Flight): void {
    if (this.#local === undefined || !policy.local || this.#closed) return
    if (flight?.invalidated) return
    const now = Date.now()
    let freshUntil = entry.freshUntil
    if (this.#localTtlMs !== undefined) freshUntil = Math.min(freshUntil, now + this.#localTtlMs)
    // During an outage (Redis or the invalidation channel down) the local tier keeps filling, or
    // every read would become a load; but other processes' invalidations cannot reach it, so what
    // it takes in is trusted for `outageTtlMs` at most (bounded staleness, not a stampede). The
    // re-subscription after the outage clears it anyway.
    if (!this.#subscribed || !this.#tier.available) freshUntil = Math.min(freshUntil, now + this.#outageTtlMs)
    // A fresh object of one fixed shape (no spread: `entry` may carry the serialized payload,
    // which the local tier must not keep alive).
    this.#local.set(key, {
      value: entry.value,
      negative: entry.negative,
      freshUntil,
      staleUntil: entry.staleUntil,
      size: entry.size,
    })
  }

  // ---- invalidation -------------------------------------------------------------------------

  #invalidateLocally(key: string): void {
    this.#invalidationSeq++
    this.#local?.delete(key)
    // Callers that arrive from now on must not join a load that may have read the old row, and
    // such a load must not fill the local tier.
    this.#flights.delete(key)
    for (const flight of this.#running) if (flight.key === key) flight.invalidated = true
  }

  #invalidateAllLocally(): void {
    this.#invalidationSeq++
    this.#local?.clear()
    for (const flight of this.#running) flight.invalidated = true
  }

  async #publish(keys: string[]): Promise<void> {
    if (this.#bus === undefined) return
    await this.#tier.publish(this.#keys.channel, InvalidationBus.encode(this.#origin, keys))
  }

  #count(counter: CacheCounter, by?: number): void {
    this.#counters.count(counter, by)
  }
}
