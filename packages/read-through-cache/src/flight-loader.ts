import type { CacheCounters } from './cache-counters.js'
import type { EntryCodec } from './entry-codec.js'
import { type Policy, passesCheck } from './entry-policy.js'
import type { Flight } from './flight.js'
import { FlightFallbacks } from './flight-fallbacks.js'
import type { InvalidationPublisher } from './invalidation-bus.js'
import type { KeyLayout } from './key-layout.js'
import { LeaseHolder } from './lease-holder.js'
import type { LeaseTokens } from './lease-tokens.js'
import { outcomeResult } from './load-outcome.js'
import type { Loader } from './loader.js'
import type { RunLoad } from './loader-call.js'
import type { LocalEntry } from './local-tier.js'
import type { LocalView } from './local-view.js'
import { loadInMemory, type MemoryLoadParts } from './memory-load.js'
import type { MissRate } from './miss-rate.js'
import type { ResolvedOptions } from './options.js'
import type { PendingInvalidations } from './pending-invalidations.js'
import type { LeaseRead, RedisTier } from './redis-tier.js'
import type { TagBookkeeping } from './tag-bookkeeping.js'

const noop = () => {}
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export interface FlightLoaderOptions {
  options: Pick<ResolvedOptions, 'leases' | 'leaseTtlMs' | 'leaseWaitTimeoutMs'>
  tier: RedisTier
  keys: KeyLayout
  codec: EntryCodec
  tags: TagBookkeeping
  tokens: LeaseTokens
  pending: PendingInvalidations
  missRate: MissRate
  counters: CacheCounters
  /** Runs a loader call under the process-wide cap and the hard timeout (and counts it). */
  runLoad: RunLoad
  /** The local tier the flight fills (unless it was invalidated meanwhile), and whether the cache is closed. */
  view: LocalView
  /** Tells the other processes' local tiers to drop keys. */
  publisher: InvalidationPublisher
  /** No Redis: every load is `loadInMemory`. */
  memoryOnly: boolean
}

/**
 * What a flight does: read or take the key's lease in Redis, load under it (or wait for the
 * holder's value), write, and answer the flight's callers; without Redis, load and keep the value
 * only locally.
 */
export class FlightLoader {
  readonly #options: FlightLoaderOptions['options']
  readonly #tier: RedisTier
  readonly #keys: KeyLayout
  readonly #codec: EntryCodec
  readonly #tags: TagBookkeeping
  readonly #tokens: LeaseTokens
  readonly #missRate: MissRate
  readonly #counters: CacheCounters
  readonly #fallbacks: FlightFallbacks
  readonly #holder: LeaseHolder
  readonly #view: LocalView
  /** Set in a memory-only cache: every load is `loadInMemory`. */
  readonly #memory: MemoryLoadParts | undefined

  constructor(options: FlightLoaderOptions) {
    this.#options = options.options
    this.#tier = options.tier
    this.#keys = options.keys
    this.#codec = options.codec
    this.#tags = options.tags
    this.#tokens = options.tokens
    this.#missRate = options.missRate
    this.#counters = options.counters
    this.#view = options.view
    this.#fallbacks = new FlightFallbacks(
      options.tier,
      options.codec,
      options.counters,
      options.runLoad,
      options.view,
    )
    this.#holder = new LeaseHolder({ ...options, fallbacks: this.#fallbacks })
    this.#memory = options.memoryOnly
      ? { fallbacks: this.#fallbacks, tags: this.#tags, keys: this.#keys, counters: this.#counters }
      : undefined
  }

  /** Runs the flight's load to its end; throws only what the caller must reject the flight with. */
  load(
    flight: Flight,
    loader: Loader<unknown>,
    policy: Policy,
    localStale: LocalEntry | undefined,
    skipRedis: boolean,
  ): Promise<void> {
    // Each branch is an async function (never throws synchronously): no wrapper promise on the miss path.
    if (this.#memory !== undefined) return loadInMemory(this.#memory, flight, loader, policy, localStale)
    if (skipRedis) return this.#fallbacks.loadWithoutRedis(flight.key, loader, policy, localStale, flight)
    return this.#fly(flight.key, loader, policy, localStale, flight)
  }

  async #fly(
    key: string,
    loader: Loader<unknown>,
    policy: Policy,
    localStale: LocalEntry | undefined,
    flight: Flight,
  ): Promise<void> {
    const entry = this.#keys.entry(key)
    if (!this.#options.leases)
      return this.#fallbacks.flyWithoutLeases(entry, loader, policy, localStale, flight)
    const token = this.#tokens.issue()
    flight.token = token
    const deadline = Date.now() + this.#options.leaseWaitTimeoutMs
    let delay = 2
    let waited = false
    /** The lease holder this flight waits on: if it stores nothing, its outcome is ours. */
    let awaited: string | undefined
    /** The fresh value failed `checkValue`: take the lease over it, as `forceFresh` does. */
    let rejectedByCheck = false
    for (;;) {
      // One script both reads and, on a miss or a stale value, takes the lease; polling it while
      // another process loads also takes over the lease if that process gives it up.
      let read: LeaseRead
      // Joiners from now on joined after this read was sent: its answer may predate their call.
      const sent = ++flight.sends
      try {
        // forceFresh: the first read takes the lease even over a fresh value; after a wait, the
        // value the holder wrote meanwhile is fresher than the call and is taken.
        const force = (policy.forceFresh || policy.refreshEarly || rejectedByCheck) && !waited
        read = await this.#tier.getOrLease(entry, Date.now(), token, this.#options.leaseTtlMs, awaited, force)
      } catch {
        return this.#fallbacks.loadWithoutRedis(key, loader, policy, localStale, flight)
      }
      const now = Date.now()
      const found = read.text === undefined ? undefined : this.#codec.decode(key, read.text)
      if (read.status === 'fresh') {
        if (found === undefined) {
          // Fresh by its header but unreadable (another serializer, a foreign writer): nobody can
          // take the lease before it expires, so load without writing rather than wait for nothing.
          return this.#fallbacks.loadWithoutRedis(key, loader, policy, localStale, flight)
        }
        if (!passesCheck(policy, found) && !rejectedByCheck && !waited) {
          rejectedByCheck = true
          flight.replacesFresh = true
          continue
        }
        this.#counters.hit(key, 'redis')
        this.#missRate.recordHit()
        this.#view.put(key, found, policy, flight)
        flight.validBefore = sent
        return flight.resolve(found.value)
      }
      const stale = rejectedByCheck ? undefined : (found ?? localStale)
      if (read.status === 'outcome-left') {
        // The holder we waited on found nothing or failed, and said so: take that as our answer.
        const failed = outcomeResult(key, read.outcome)
        flight.validBefore = sent
        if (failed === undefined) return flight.resolve(undefined)
        if (stale !== undefined && now < stale.freshUntil + policy.gracePeriodMs) {
          this.#fallbacks.answerStale(flight, stale.value)
          return flight.resolve(stale.value)
        }
        return flight.reject(failed.error)
      }
      if (read.status === 'acquired') {
        if (
          !policy.forceFresh &&
          stale !== undefined &&
          now < stale.freshUntil + policy.staleWhileRevalidateMs
        ) {
          // Stale-while-revalidate: answer now, refresh in this flight. It stays joinable, so calls
          // during the refresh get the same stale value instead of each starting a flight.
          this.#fallbacks.answerStale(flight, stale.value)
        } else if (!waited) {
          this.#counters.miss(key)
          this.#missRate.recordMiss()
        }
        if (waited) flight.hooks?.waiting(key, false)
        return this.#holder.load(entry, token, loader, policy, stale, flight)
      }
      // Another caller holds the lease and is loading.
      awaited = read.holder
      if (read.holder !== undefined && this.#tokens.isOrphan(read.holder)) {
        // It is a lease of this very process whose flight is over: its write or release never got
        // through (Redis failed at that moment). Nobody will fill the key, so free it and go again
        // instead of waiting for it to expire.
        await this.#tier.releaseLease(entry, read.holder).catch(noop)
        continue
      }
      // An eager refresh with another process already refreshing: nothing to do.
      if (policy.refreshEarly) {
        flight.validBefore = sent
        return flight.resolve(stale?.value)
      }
      if (
        !policy.forceFresh &&
        stale !== undefined &&
        now < stale.freshUntil + Math.max(policy.staleWhileRevalidateMs, policy.gracePeriodMs)
      ) {
        this.#fallbacks.answerStale(flight, stale.value)
        return flight.resolve(stale.value)
      }
      if (!waited) {
        waited = true
        flight.hooks?.waiting(key, true)
        this.#counters.count('coalescedWaits')
      }
      if (now >= deadline || this.#view.closed) {
        // The lease holder is too slow (or gone and its lease not yet expired): load ourselves, but
        // do not write, since only the lease holder may.
        flight.hooks?.waiting(key, false)
        return this.#fallbacks.loadWithoutRedis(key, loader, policy, stale, flight)
      }
      // Polling the same script both watches for the value and takes the lease if the holder gives up.
      await sleep(Math.min(delay, deadline - now))
      delay = Math.min(delay * 2, 50)
    }
  }
}
