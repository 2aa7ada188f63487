import type { Policy } from './entry-policy.js'
import type { Flight } from './flight.js'
import { type LocalEntry, LocalTier } from './local-tier.js'
import type { ResolvedOptions } from './options.js'

/**
 * What this process holds and how far it can be trusted: the local tier, the flights (loads of
 * this process that callers join), and the bookkeeping that keeps an invalidation from being
 * undone by either. The facade's reads and writes and the `FlightLoader` all go through here.
 */
export class LocalView {
  readonly #local: LocalTier | undefined
  readonly #localTtlMs: number | undefined
  readonly #outageTtlMs: number
  /** `true` while Redis answers (the circuit is closed). */
  readonly #redisAvailable: () => boolean
  /** Flights that callers can still join, by key. */
  readonly flights = new Map<string, Flight>()
  /** Every flight still running (including refreshes whose callers were already answered), to mark on invalidation. */
  readonly running = new Set<Flight>()
  /** Bumped by every invalidation this process sees; a plain `get` fills the local tier only if it did not move. */
  #invalidationSeq = 0
  /** The invalidation channel is subscribed: the local tier hears of every invalidation. */
  subscribed = false
  /** The cache is closed: nothing enters the local tier any more, no flight waits on. */
  closed = false

  constructor(local: ResolvedOptions['local'], redisAvailable: () => boolean) {
    this.#local = local === false ? undefined : new LocalTier(local)
    this.#localTtlMs = local === false ? undefined : local.ttlMs
    this.#outageTtlMs = local === false ? 0 : local.outageTtlMs
    this.#redisAvailable = redisAvailable
  }

  /** The local tier, if the cache has one. */
  get local(): LocalTier | undefined {
    return this.#local
  }

  /** Compare before and after a Redis read: a moved value means an invalidation came in between. */
  get invalidationSeq(): number {
    return this.#invalidationSeq
  }

  /** Fills the local tier, unless the cache has none, the policy skips it or `flight` was invalidated. */
  put(key: string, entry: LocalEntry, policy: Policy, flight?: Flight): void {
    if (this.#local === undefined || !policy.local || this.closed) return
    if (flight?.invalidated) return
    const now = Date.now()
    let freshUntil = entry.freshUntil
    if (this.#localTtlMs !== undefined) freshUntil = Math.min(freshUntil, now + this.#localTtlMs)
    // During an outage (Redis or the invalidation channel down) the local tier keeps filling, or
    // every read would become a load; but other processes' invalidations cannot reach it, so what
    // it takes in is trusted for `outageTtlMs` at most (bounded staleness, not a stampede). The
    // re-subscription after the outage clears it anyway.
    if (!this.subscribed || !this.#redisAvailable())
      freshUntil = Math.min(freshUntil, now + this.#outageTtlMs)
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

  /** Drops `key` here: from the local tier, and from the flights a caller could join. */
  invalidate(key: string): void {
    this.#invalidationSeq++
    this.#local?.delete(key)
    // Callers that arrive from now on must not join a load that may have read the old row, and
    // such a load must not fill the local tier.
    this.flights.delete(key)
    for (const flight of this.running) if (flight.key === key) flight.invalidated = true
  }

  /** Drops everything here (a missed invalidation message, `clear()`). */
  invalidateAll(): void {
    this.#invalidationSeq++
    this.#local?.clear()
    for (const flight of this.running) flight.invalidated = true
  }

  /** Invalidations may be missed from now on: bound how long what the local tier holds is trusted. */
  distrust(): void {
    this.#local?.capFreshness(Date.now() + this.#outageTtlMs)
  }

  /** Whether the local tier holds `key` right now (fresh or stale). */
  has(key: string): boolean {
    return this.#local?.peek(key) !== undefined
  }

  /** Resolves when every flight started so far has finished. */
  async settled(): Promise<void> {
    await Promise.all([...this.running].map((flight) => flight.done))
  }

  /** Empties the local tier and stops filling it (after `close()`). */
  close(): void {
    this.closed = true
    this.#local?.clear()
    this.subscribed = false
  }
}
