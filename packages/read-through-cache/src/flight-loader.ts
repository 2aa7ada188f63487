import type { CacheCounters } from './cache-counters.js'
import type { CachedEntry, EntryCodec } from './entry-codec.js'
import { type Policy, passesCheck } from './entry-policy.js'
import type { Flight } from './flight.js'
import { FlightFallbacks } from './flight-fallbacks.js'
import type { InvalidationPublisher } from './invalidation-bus.js'
import type { EntryKeys, KeyLayout } from './key-layout.js'
import type { LeaseTokens } from './lease-tokens.js'
import { encodeOutcome, type LoadOutcome, outcomeResult, summarizeError } from './load-outcome.js'
import type { Loader } from './loader.js'
import { effectivePolicy, lateTagsOf, type RunLoad } from './loader-call.js'
import type { LocalEntry } from './local-tier.js'
import type { LocalView } from './local-view.js'
import { loadInMemory, type MemoryLoadParts } from './memory-load.js'
import type { MissRate } from './miss-rate.js'
import type { ResolvedOptions } from './options.js'
import type { PendingInvalidations } from './pending-invalidations.js'
import type { LeaseRead, RedisTier } from './redis-tier.js'
import type { TagBookkeeping } from './tag-bookkeeping.js'

const noop = () => {}
const SOURCE_LOAD = { source: 'load' } as const
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
  readonly #pending: PendingInvalidations
  readonly #missRate: MissRate
  readonly #counters: CacheCounters
  readonly #fallbacks: FlightFallbacks
  readonly #view: LocalView
  readonly #publisher: InvalidationPublisher
  /** Set in a memory-only cache: every load is `loadInMemory`. */
  readonly #memory: MemoryLoadParts | undefined

  constructor(options: FlightLoaderOptions) {
    this.#options = options.options
    this.#tier = options.tier
    this.#keys = options.keys
    this.#codec = options.codec
    this.#tags = options.tags
    this.#tokens = options.tokens
    this.#pending = options.pending
    this.#missRate = options.missRate
    this.#counters = options.counters
    this.#view = options.view
    this.#publisher = options.publisher
    this.#fallbacks = new FlightFallbacks(
      options.tier,
      options.codec,
      options.counters,
      options.runLoad,
      options.view,
    )
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
      value = await this.#fallbacks.callLoader(flight, loader, stale, policy)
    } catch (error) {
      // Answer first; the release is part of the flight (settled() and close() wait for it).
      const served = this.#fallbacks.failLoad(error, policy, stale, flight)
      if (served !== undefined) return this.#fallbacks.storeBackoff(entry, token, served, policy, flight)
      return this.#release(entry, token, { kind: 'error', error: summarizeError(error) }, flight)
    }
    if (flight.skipStore) {
      flight.resolve(value)
      const held = await this.#tier.releaseLease(entry, token).catch(() => false)
      if (!held) flight.validBefore = 0
      return
    }
    let cached: CachedEntry | undefined
    try {
      cached = this.#codec.build(entry.key, value, effectivePolicy(policy, flight))
    } catch (error) {
      flight.reject(error)
      return this.#release(entry, token, { kind: 'error', error: summarizeError(error) }, flight)
    }
    if (cached === undefined) {
      flight.resolve(value)
      return this.#release(entry, token, { kind: 'missing' }, flight)
    }
    const lateTags = lateTagsOf(policy, flight)
    // Answer the callers now and write afterwards: the write cannot change what they get, and a
    // miss then costs them the two reads, not the write too. No one joins from here on: a caller
    // that began after the write was sent cannot know it landed before a write of another process
    // (its GET, sent after the write on the same connection, reads what the write left).
    flight.resolve(value)
    let stored = false
    try {
      // Tag members first, then the value: a deleteByTag that ran during the load is seen before
      // anything is written (a write undone afterwards was visible to readers in between).
      const current =
        (tags.length === 0 && lateTags.length === 0) ||
        (await this.#tags.joinBeforeWrite(
          tags,
          entry,
          effectivePolicy(policy, flight),
          epochsBefore,
          this.#tags.keysOf(lateTags),
          flight.startedAt,
        ))
      if (!current) {
        await this.#tier.releaseLease(entry, token)
      } else {
        stored = await this.#tier.setIfLease(
          entry,
          token,
          this.#codec.text(cached),
          Math.max(1, cached.staleUntil - Date.now()),
        )
        if (!stored) this.#counters.count('staleSetsPrevented')
      }
    } catch {
      stored = false
      // With tags the write may have landed (a timed-out command can still run) without its tag
      // membership, or a deleteByTag may have raced it and the undo failed: either way no later
      // deleteByTag would remove it. Queue the key's invalidation so it goes once Redis answers.
      if (tags.length > 0 || lateTags.length > 0) this.#pending.queue({ kind: 'key', key: entry.key })
    }
    // Not stored: a write voided the lease (or the tags' epochs moved) during the load, so those who
    // joined it may have begun after that write; they load again (the first callers overlapped it).
    if (!stored) flight.validBefore = 0
    if (stored) {
      this.#view.put(entry.key, cached, policy, flight)
      this.#counters.events.emit('set', entry.key, SOURCE_LOAD)
    }
    // A forced load replaced a value that may be fresh in other processes' local tiers.
    if (stored && (policy.forceFresh || flight.replacesFresh))
      await this.#publisher.publish([entry.key]).catch(noop)
    flight.resolve(value)
  }

  /**
   * Releases the lease, leaving the outcome for the callers waiting on it (never throws). If the
   * lease was no longer ours, a write voided it: the flight's joiners must not take its outcome.
   */
  async #release(entry: EntryKeys, token: string, outcome: LoadOutcome, flight: Flight): Promise<void> {
    const ttl = Math.max(1_000, this.#options.leaseWaitTimeoutMs)
    const held = await this.#tier
      .releaseWithOutcome(entry, token, encodeOutcome(outcome), ttl)
      .catch(() => false)
    if (!held) flight.validBefore = 0
  }
}
