import type { CacheCounters } from './cache-counters.js'
import type { CachedEntry, EntryCodec } from './entry-codec.js'
import type { Policy } from './entry-policy.js'
import type { Flight } from './flight.js'
import type { FlightFallbacks } from './flight-fallbacks.js'
import type { FlightLoaderOptions } from './flight-loader.js'
import type { InvalidationPublisher } from './invalidation-bus.js'
import type { EntryKeys } from './key-layout.js'
import { encodeOutcome, type LoadOutcome, summarizeError } from './load-outcome.js'
import type { Loader } from './loader.js'
import { effectivePolicy, lateTagsOf } from './loader-call.js'
import type { LocalEntry } from './local-tier.js'
import type { LocalView } from './local-view.js'
import type { PendingInvalidations } from './pending-invalidations.js'
import type { RedisTier } from './redis-tier.js'
import type { TagBookkeeping } from './tag-bookkeeping.js'

const noop = () => {}
const SOURCE_LOAD = { source: 'load' } as const

export type LeaseHolderParts = Pick<
  FlightLoaderOptions,
  'options' | 'tier' | 'codec' | 'tags' | 'pending' | 'counters' | 'view' | 'publisher'
> & { fallbacks: FlightFallbacks }

/**
 * What the process holding a key's lease does: load, write the value under the lease only if no
 * write or tag invalidation voided it meanwhile, or leave its outcome (not found, failed) for the
 * callers waiting on it; and answer the flight.
 */
export class LeaseHolder {
  readonly #leaseWaitTimeoutMs: number
  readonly #tier: RedisTier
  readonly #codec: EntryCodec
  readonly #tags: TagBookkeeping
  readonly #pending: PendingInvalidations
  readonly #counters: CacheCounters
  readonly #view: LocalView
  readonly #publisher: InvalidationPublisher
  readonly #fallbacks: FlightFallbacks

  constructor(parts: LeaseHolderParts) {
    this.#leaseWaitTimeoutMs = parts.options.leaseWaitTimeoutMs
    this.#tier = parts.tier
    this.#codec = parts.codec
    this.#tags = parts.tags
    this.#pending = parts.pending
    this.#counters = parts.counters
    this.#view = parts.view
    this.#publisher = parts.publisher
    this.#fallbacks = parts.fallbacks
  }

  /** Loads under the lease this flight took, writes (or leaves its outcome) and answers the flight. */
  async load(
    entry: EntryKeys,
    token: string,
    loader: Loader<unknown>,
    policy: Policy,
    stale: LocalEntry | undefined,
    flight: Flight,
  ): Promise<void> {
    const tags = this.#tags.keysOf(policy)
    let epochsBefore: (string | null)[] = []
    if (tags.length > 0) {
      try {
        // Read before loading: a deleteByTag that bumps an epoch after this point is detected below.
        epochsBefore = await this.#tags.epochsBeforeLoad(tags)
      } catch {
        // Redis failed just now (or a foreign key sits at the epoch): the load cannot be checked
        // against a racing deleteByTag, so it is not written. Give the lease back if Redis lets us
        // (else it expires) and load as without Redis: the callers still get the value.
        this.#tier.releaseLease(entry, token).catch(noop)
        return this.#fallbacks.loadWithoutRedis(entry.key, loader, policy, stale, flight)
      }
    }
    let value: unknown
    try {
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
    const tagged = tags.length > 0 || lateTags.length > 0
    // Answer the callers without waiting for the write's reply: it cannot change what they get, and
    // a miss then costs them the two reads (and, with tags, the tag bookkeeping), not the write too.
    // They are answered as the write leaves, so it is on its way before their next commands are
    // made: a get() right after reads what it left. No one joins from then on: a caller that began
    // after the write was sent cannot know it landed before a write of another process.
    const answer = () => flight.resolve(value)
    let stored = false
    try {
      // Tag members first, then the value: a deleteByTag that ran during the load is seen before
      // anything is written (a write undone afterwards was visible to readers in between).
      const current =
        !tagged ||
        (await this.#tags.joinBeforeWrite(
          tags,
          entry,
          effectivePolicy(policy, flight),
          epochsBefore,
          this.#tags.keysOf(lateTags),
          flight.startedAt,
        ))
      if (!current) {
        // A deleteByTag raced the load: nothing is written, so nothing to wait for.
        answer()
        await this.#tier.releaseLease(entry, token)
      } else {
        stored = await this.#tier.setIfLease(
          entry,
          token,
          this.#codec.text(cached),
          Math.max(1, cached.staleUntil - Date.now()),
          answer,
        )
        if (!stored) this.#counters.count('staleSetsPrevented')
      }
    } catch {
      stored = false
      // With tags the write may have landed (a timed-out command can still run) without its tag
      // membership, or a deleteByTag may have raced it and the undo failed: either way no later
      // deleteByTag would remove it. Queue the key's invalidation so it goes once Redis answers.
      if (tagged) this.#pending.queue({ kind: 'key', key: entry.key })
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
    const ttl = Math.max(1_000, this.#leaseWaitTimeoutMs)
    const held = await this.#tier
      .releaseWithOutcome(entry, token, encodeOutcome(outcome), ttl)
      .catch(() => false)
    if (!held) flight.validBefore = 0
  }
}
