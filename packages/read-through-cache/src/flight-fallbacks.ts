import type { CacheCounters } from './cache-counters.js'
import type { CachedEntry, EntryCodec } from './entry-codec.js'
import type { Policy } from './entry-policy.js'
import type { Flight } from './flight.js'
import type { EntryKeys } from './key-layout.js'
import type { Loader } from './loader.js'
import { callLoader, effectivePolicy, type RunLoad } from './loader-call.js'
import type { LocalEntry } from './local-tier.js'
import type { LocalView } from './local-view.js'
import type { RedisTier } from './redis-tier.js'

/**
 * A flight's ways of answering without a lease: when Redis is unavailable (load, keep the value
 * only locally), in the `leases: false` control mode, and when a load fails (a stale value within
 * the grace period, or the error). `FlightLoader` runs the lease protocol and falls back to these.
 */
const noop = () => {}

export class FlightFallbacks {
  readonly #tier: RedisTier
  readonly #codec: EntryCodec
  readonly #counters: CacheCounters
  readonly #runLoad: RunLoad
  readonly #view: LocalView

  constructor(
    tier: RedisTier,
    codec: EntryCodec,
    counters: CacheCounters,
    runLoad: RunLoad,
    view: LocalView,
  ) {
    this.#tier = tier
    this.#codec = codec
    this.#counters = counters
    this.#runLoad = runLoad
    this.#view = view
  }

  /** The entry a grace back-off stores: the served stale value, fresh for `graceBackoffMs`. */
  backoffEntry(key: string, served: LocalEntry, policy: Policy): CachedEntry | undefined {
    if (policy.graceBackoffMs <= 0) return undefined
    const freshUntil = Math.min(Date.now() + policy.graceBackoffMs, served.staleUntil)
    try {
      return this.#codec.restamp(key, served, freshUntil)
    } catch {
      return undefined
    }
  }

  /**
   * Redis unavailable (or the lease wait timed out, or a memory-only cache): load, cap-limited,
   * and keep the value only locally. `keep`, if given, decides whether the loaded entry may enter
   * the local tier (memory-only: the tag bookkeeping and its race check).
   */
  async loadWithoutRedis(
    key: string,
    loader: Loader<unknown>,
    policy: Policy,
    stale: LocalEntry | undefined,
    flight: Flight,
    keep?: () => Promise<boolean>,
  ): Promise<void> {
    let value: unknown
    try {
      value = await this.callLoader(flight, loader, stale, policy)
    } catch (error) {
      const served = this.failLoad(error, policy, stale, flight)
      const backoff = served === undefined ? undefined : this.backoffEntry(key, served, policy)
      if (backoff !== undefined) this.#view.put(key, backoff, policy, flight)
      return
    }
    const cached = flight.skipStore
      ? undefined
      : this.#codec.build(key, value, effectivePolicy(policy, flight))
    if (cached !== undefined && (keep === undefined || (await keep())))
      this.#view.put(key, cached, policy, flight)
    flight.resolve(value)
  }

  /** The control mode (`leases: false`): GET, load, SET, as a cache without leases does it. */
  async flyWithoutLeases(
    entry: EntryKeys,
    loader: Loader<unknown>,
    policy: Policy,
    localStale: LocalEntry | undefined,
    flight: Flight,
  ): Promise<void> {
    let text: string | null
    try {
      text = await this.#tier.get(entry)
    } catch {
      return this.loadWithoutRedis(entry.key, loader, policy, localStale, flight)
    }
    const found = text === null ? undefined : this.#codec.decode(entry.key, text)
    if (found !== undefined && found.freshUntil > Date.now()) {
      this.#counters.hit(entry.key, 'redis')
      this.#view.put(entry.key, found, policy, flight)
      return flight.resolve(found.value)
    }
    this.#counters.miss(entry.key)
    const stale = found ?? localStale
    let value: unknown
    try {
      value = await this.callLoader(flight, loader, stale, policy)
    } catch (error) {
      this.failLoad(error, policy, stale, flight)
      return
    }
    const cached = flight.skipStore
      ? undefined
      : this.#codec.build(entry.key, value, effectivePolicy(policy, flight))
    if (cached !== undefined) {
      try {
        await this.#tier.setUnguarded(
          entry,
          this.#codec.text(cached),
          Math.max(1, cached.staleUntil - Date.now()),
        )
        this.#view.put(entry.key, cached, policy, flight)
      } catch {}
    }
    flight.resolve(value)
  }

  /** Answers the callers of a failed load: a stale value within the grace period (returned), or the error. */
  failLoad(
    error: unknown,
    policy: Policy,
    stale: LocalEntry | undefined,
    flight: Flight,
  ): LocalEntry | undefined {
    this.#counters.loadError(flight.key, error)
    if (stale !== undefined && Date.now() < stale.freshUntil + policy.gracePeriodMs) {
      // Fail-safe: a stale value within the grace period beats an error.
      this.answerStale(flight, stale.value)
      flight.resolve(stale.value)
      return stale
    }
    flight.reject(error)
    return undefined
  }

  callLoader(
    flight: Flight,
    loader: Loader<unknown>,
    stale: LocalEntry | undefined,
    policy: Policy,
  ): Promise<unknown> {
    return callLoader(flight, loader, stale, policy, this.#runLoad, this.answerStale)
  }

  /** Answers the flight's callers with a stale value, keeping the flight joinable; counts each caller. */
  readonly answerStale = (flight: Flight, value: unknown): void => {
    if (flight.answered) return
    if (flight.callers > 0) this.#counters.stale(flight.key, flight.callers)
    flight.servedStale = true
    flight.answer(value)
  }

  /**
   * Grace back-off: the loader failed and a stale value was served. Store that value as fresh for
   * `graceBackoffMs` (under the lease, so an invalidation meanwhile still wins), so the next reads,
   * here and in every process, get it without calling the failing loader again each time.
   */
  async storeBackoff(
    entry: EntryKeys,
    token: string,
    served: LocalEntry,
    policy: Policy,
    flight: Flight,
  ): Promise<void> {
    const backoff = this.backoffEntry(entry.key, served, policy)
    if (backoff === undefined) return this.#tier.releaseLease(entry, token).then(noop, noop)
    try {
      const px = Math.max(1, backoff.staleUntil - Date.now())
      if (await this.#tier.setIfLease(entry, token, this.#codec.text(backoff), px)) {
        this.#view.put(entry.key, backoff, policy, flight)
      }
    } catch {
      await this.#tier.releaseLease(entry, token).catch(noop)
    }
  }
}
