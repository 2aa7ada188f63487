import type { CachedEntry, EntryCodec } from './entry-codec.js'
import { type Policy, passesCheck } from './entry-policy.js'
import type { Flight } from './flight.js'
import type { EntryKeys, KeyLayout } from './key-layout.js'
import type { LeaseTokens } from './lease-tokens.js'
import { encodeOutcome, type LoadOutcome, outcomeResult, summarizeError } from './load-outcome.js'
import type { Loader } from './loader.js'
import { callLoader, effectivePolicy, type RunLoad } from './loader-call.js'
import type { LocalEntry } from './local-tier.js'
import type { MissRate } from './miss-rate.js'
import type { CacheCounter, ResolvedOptions } from './options.js'
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
  count: (counter: CacheCounter, by?: number) => void
  /** Runs a loader call under the process-wide cap and the hard timeout (and counts it). */
  runLoad: RunLoad
  /** Fills the local tier, unless the flight was invalidated meanwhile. */
  putLocal: (key: string, entry: LocalEntry, policy: Policy, flight: Flight) => void
  isClosed: () => boolean
  /** Tells the other processes' local tiers to drop keys. */
  publish: (keys: string[]) => Promise<void>
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
  readonly #pending: PendingInvalidations
  readonly #missRate: MissRate
  readonly #count: (counter: CacheCounter, by?: number) => void
  readonly #runLoad: FlightLoaderOptions['runLoad']
  readonly #putLocal: FlightLoaderOptions['putLocal']
  readonly #isClosed: () => boolean
  readonly #publish: (keys: string[]) => Promise<void>

  constructor(options: FlightLoaderOptions) {
    this.#options = options.options
    this.#tier = options.tier
    this.#keys = options.keys
    this.#codec = options.codec
    this.#tags = options.tags
    this.#tokens = options.tokens
    this.#pending = options.pending
    this.#missRate = options.missRate
    this.#count = options.count
    this.#runLoad = options.runLoad
    this.#putLocal = options.putLocal
    this.#isClosed = options.isClosed
    this.#publish = options.publish
  }

  /** Runs the flight's load to its end; throws only what the caller must reject the flight with. */
  async load(
    flight: Flight,
    loader: Loader<unknown>,
    policy: Policy,
    localStale: LocalEntry | undefined,
    skipRedis: boolean,
  ): Promise<void> {
    if (skipRedis) await this.#loadWithoutRedis(flight.key, loader, policy, localStale, flight)
    else await this.#fly(flight.key, loader, policy, localStale, flight)
  }

  async #fly(
    key: string,
    loader: Loader<unknown>,
    policy: Policy,
    localStale: LocalEntry | undefined,
    flight: Flight,
  ): Promise<void> {
    const entry = this.#keys.entry(key)
    if (!this.#options.leases) return this.#flyWithoutLeases(entry, loader, policy, localStale, flight)
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
      try {
        // forceFresh: the first read takes the lease even over a fresh value; after a wait, the
        // value the holder wrote meanwhile is fresher than the call and is taken.
        const force = (policy.forceFresh || policy.refreshEarly || rejectedByCheck) && !waited
        read = await this.#tier.getOrLease(entry, Date.now(), token, this.#options.leaseTtlMs, awaited, force)
      } catch {
        return this.#loadWithoutRedis(key, loader, policy, localStale, flight)
      }
      const now = Date.now()
      const found = read.text === undefined ? undefined : this.#codec.decode(key, read.text)
      if (read.status === 0) {
        if (found === undefined) {
          // Fresh by its header but unreadable (another serializer, a foreign writer): nobody can
          // take the lease before it expires, so load without writing rather than wait for nothing.
          return this.#loadWithoutRedis(key, loader, policy, localStale, flight)
        }
        if (!passesCheck(policy, found) && !rejectedByCheck && !waited) {
          rejectedByCheck = true
          flight.replacesFresh = true
          continue
        }
        this.#count('hitsRedis')
        this.#missRate.recordHit()
        this.#putLocal(key, found, policy, flight)
        return flight.resolve(found.value)
      }
      const stale = rejectedByCheck ? undefined : (found ?? localStale)
      if (read.status === 3) {
        // The holder we waited on found nothing or failed, and said so: take that as our answer.
        const failed = outcomeResult(key, read.outcome)
        if (failed === undefined) return flight.resolve(undefined)
        if (stale !== undefined && now < stale.freshUntil + policy.gracePeriodMs) {
          this.#answerStale(flight, stale.value)
          return flight.resolve(stale.value)
        }
        return flight.reject(failed.error)
      }
      if (read.status === 1) {
        if (
          !policy.forceFresh &&
          stale !== undefined &&
          now < stale.freshUntil + policy.staleWhileRevalidateMs
        ) {
          // Stale-while-revalidate: answer now, refresh in this flight. It stays joinable, so calls
          // during the refresh get the same stale value instead of each starting a flight.
          this.#answerStale(flight, stale.value)
        } else if (!waited) {
          this.#count('misses')
          this.#missRate.recordMiss()
        }
        if (waited) flight.hooks?.waiting(key, false)
        return this.#loadUnderLease(entry, token, loader, policy, stale, flight)
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
      if (policy.refreshEarly) return flight.resolve(stale?.value)
      if (
        !policy.forceFresh &&
        stale !== undefined &&
        now < stale.freshUntil + Math.max(policy.staleWhileRevalidateMs, policy.gracePeriodMs)
      ) {
        this.#answerStale(flight, stale.value)
        return flight.resolve(stale.value)
      }
      if (!waited) {
        waited = true
        flight.hooks?.waiting(key, true)
        this.#count('coalescedWaits')
      }
      if (now >= deadline || this.#isClosed()) {
        // The lease holder is too slow (or gone and its lease not yet expired): load ourselves, but
        // do not write, since only the lease holder may.
        flight.hooks?.waiting(key, false)
        return this.#loadWithoutRedis(key, loader, policy, stale, flight)
      }
      // Polling the same script both watches for the value and takes the lease if the holder gives up.
      await sleep(Math.min(delay, deadline - now))
      delay = Math.min(delay * 2, 50)
    }
  }

  async #loadUnderLease(
    entry: EntryKeys,
    token: string,
    loader: Loader<unknown>,
    policy: Policy,
    stale: LocalEntry | undefined,
    flight: Flight,
  ): Promise<void> {
    const tags = this.#tags.keysOf(policy)
    let epochsBefore: (string | null)[] = []
    let value: unknown
    try {
      // Read before loading: a deleteByTag that bumps an epoch after this point is detected below.
      if (tags.length > 0) epochsBefore = await this.#tags.epochsBeforeLoad(tags)
      value = await this.#callLoader(flight, loader, stale, policy)
    } catch (error) {
      // Answer first; the release is part of the flight (settled() and close() wait for it).
      const served = this.#failLoad(error, policy, stale, flight)
      if (served !== undefined) return this.#storeBackoff(entry, token, served, policy, flight)
      return this.#release(entry, token, { kind: 'error', error: summarizeError(error) })
    }
    if (flight.skipStore) {
      flight.resolve(value)
      return this.#tier.releaseLease(entry, token).catch(noop)
    }
    let cached: CachedEntry | undefined
    try {
      cached = this.#codec.build(entry.key, value, effectivePolicy(policy, flight))
    } catch (error) {
      flight.reject(error)
      return this.#release(entry, token, { kind: 'error', error: summarizeError(error) })
    }
    if (cached === undefined) {
      flight.resolve(value)
      return this.#release(entry, token, { kind: 'missing' })
    }
    // Answer the callers now and write afterwards: the write cannot change what they get, and a
    // miss then costs them the two reads, not the write too. The flight stays joinable until the
    // write is done (unless invalidated), so a call in between gets this value instead of a miss.
    flight.answer(value)
    let stored = false
    try {
      stored = await this.#tier.setIfLease(
        entry,
        token,
        this.#codec.text(cached),
        Math.max(1, cached.staleUntil - Date.now()),
      )
      if (!stored) this.#count('staleSetsPrevented')
      // Undone (and not stored) if a deleteByTag ran during the load.
      if (stored && tags.length > 0) {
        stored = await this.#tags.addMembersAfterLoad(
          tags,
          entry,
          effectivePolicy(policy, flight),
          epochsBefore,
        )
      }
    } catch {
      stored = false
      // With tags the write may have landed (a timed-out command can still run) without its tag
      // membership, or a deleteByTag may have raced it and the undo failed: either way no later
      // deleteByTag would remove it. Queue the key's invalidation so it goes once Redis answers.
      if (tags.length > 0) this.#pending.queue({ kind: 'key', key: entry.key })
    }
    if (stored) this.#putLocal(entry.key, cached, policy, flight)
    // A forced load replaced a value that may be fresh in other processes' local tiers.
    if (stored && (policy.forceFresh || flight.replacesFresh)) await this.#publish([entry.key]).catch(noop)
    flight.resolve(value)
  }

  /** Releases the lease, leaving the outcome for the callers waiting on it (never throws). */
  async #release(entry: EntryKeys, token: string, outcome: LoadOutcome): Promise<void> {
    const ttl = Math.max(1_000, this.#options.leaseWaitTimeoutMs)
    await this.#tier.releaseWithOutcome(entry, token, encodeOutcome(outcome), ttl).catch(noop)
  }

  /**
   * Grace back-off: the loader failed and a stale value was served. Store that value as fresh for
   * `graceBackoffMs` (under the lease, so an invalidation meanwhile still wins), so the next reads,
   * here and in every process, get it without calling the failing loader again each time.
   */
  async #storeBackoff(
    entry: EntryKeys,
    token: string,
    served: LocalEntry,
    policy: Policy,
    flight: Flight,
  ): Promise<void> {
    const backoff = this.#backoffEntry(entry.key, served, policy)
    if (backoff === undefined) return this.#tier.releaseLease(entry, token).catch(noop)
    try {
      const px = Math.max(1, backoff.staleUntil - Date.now())
      if (await this.#tier.setIfLease(entry, token, this.#codec.text(backoff), px)) {
        this.#putLocal(entry.key, backoff, policy, flight)
      }
    } catch {
      await this.#tier.releaseLease(entry, token).catch(noop)
    }
  }

  #backoffEntry(key: string, served: LocalEntry, policy: Policy): CachedEntry | undefined {
    if (policy.graceBackoffMs <= 0) return undefined
    const freshUntil = Math.min(Date.now() + policy.graceBackoffMs, served.staleUntil)
    try {
      return this.#codec.restamp(key, served, freshUntil)
    } catch {
      return undefined
    }
  }

  /** Redis unavailable (or the lease wait timed out): load, cap-limited, and keep the value only locally. */
  async #loadWithoutRedis(
    key: string,
    loader: Loader<unknown>,
    policy: Policy,
    stale: LocalEntry | undefined,
    flight: Flight,
  ): Promise<void> {
    let value: unknown
    try {
      value = await this.#callLoader(flight, loader, stale, policy)
    } catch (error) {
      const served = this.#failLoad(error, policy, stale, flight)
      const backoff = served === undefined ? undefined : this.#backoffEntry(key, served, policy)
      if (backoff !== undefined) this.#putLocal(key, backoff, policy, flight)
      return
    }
    const cached = flight.skipStore
      ? undefined
      : this.#codec.build(key, value, effectivePolicy(policy, flight))
    if (cached !== undefined) this.#putLocal(key, cached, policy, flight)
    flight.resolve(value)
  }

  /** The control mode (`leases: false`): GET, load, SET, as a cache without leases does it. */
  async #flyWithoutLeases(
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
      return this.#loadWithoutRedis(entry.key, loader, policy, localStale, flight)
    }
    const found = text === null ? undefined : this.#codec.decode(entry.key, text)
    if (found !== undefined && found.freshUntil > Date.now()) {
      this.#count('hitsRedis')
      this.#putLocal(entry.key, found, policy, flight)
      return flight.resolve(found.value)
    }
    this.#count('misses')
    const stale = found ?? localStale
    let value: unknown
    try {
      value = await this.#callLoader(flight, loader, stale, policy)
    } catch (error) {
      this.#failLoad(error, policy, stale, flight)
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
        this.#putLocal(entry.key, cached, policy, flight)
      } catch {}
    }
    flight.resolve(value)
  }

  /** Answers the callers of a failed load: a stale value within the grace period (returned), or the error. */
  #failLoad(
    error: unknown,
    policy: Policy,
    stale: LocalEntry | undefined,
    flight: Flight,
  ): LocalEntry | undefined {
    this.#count('loadErrors')
    if (stale !== undefined && Date.now() < stale.freshUntil + policy.gracePeriodMs) {
      // Fail-safe: a stale value within the grace period beats an error.
      this.#answerStale(flight, stale.value)
      flight.resolve(stale.value)
      return stale
    }
    flight.reject(error)
    return undefined
  }

  #callLoader(
    flight: Flight,
    loader: Loader<unknown>,
    stale: LocalEntry | undefined,
    policy: Policy,
  ): Promise<unknown> {
    return callLoader(flight, loader, stale, policy, this.#runLoad, this.#answerStale)
  }

  /** Answers the flight's callers with a stale value, keeping the flight joinable; counts each caller. */
  readonly #answerStale = (flight: Flight, value: unknown): void => {
    if (flight.answered) return
    if (flight.callers > 0) this.#count('staleServed', flight.callers)
    flight.servedStale = true
    flight.answer(value)
  }
}
