import { randomBytes } from 'node:crypto'
import type { CacheEvents } from './cache-events.js'
import type { CachedEntry, EntryCodec } from './entry-codec.js'
import { assertKey, type EntryOptions, type Policy, resolvePolicy } from './entry-policy.js'
import { CacheClosedError, CacheKeyError, CacheOptionsError, CacheUnavailableError } from './errors.js'
import type { InvalidationPublisher } from './invalidation-bus.js'
import type { KeyLayout } from './key-layout.js'
import type { LocalView } from './local-view.js'
import type { ResolvedOptions } from './options.js'
import type { PendingInvalidations } from './pending-invalidations.js'
import type { RedisTier } from './redis-tier.js'
import type { TagBookkeeping } from './tag-bookkeeping.js'

const SOURCE_SET = { source: 'set' } as const

/** Entries of one `mset` sent together; the next slice goes when this one is answered. */
const MSET_SLICE = 1_000

/** One entry of `mset`: its own options (TTL, tags...) or the cache's defaults. */
export interface MsetEntry<T> {
  key: string
  value: T
  options?: EntryOptions
}

/** What the write path works with (built once by the facade). */
export interface CacheWritesParts {
  options: Pick<ResolvedOptions, 'freshness'>
  defaultPolicy: Policy
  view: LocalView
  tier: RedisTier
  keys: KeyLayout
  codec: EntryCodec
  tags: TagBookkeeping
  pending: PendingInvalidations
  publisher: InvalidationPublisher
  events: CacheEvents
}

/**
 * The writes and invalidations: each drops the key here first, then in Redis (voiding any lease,
 * so a load in flight cannot write an older value), then tells the other processes. What Redis
 * does not take is queued for replay. Documented on `ReadThroughCache`, which delegates here.
 */
export class CacheWrites {
  readonly #freshness: ResolvedOptions['freshness']
  readonly #defaultPolicy: Policy
  readonly #view: LocalView
  readonly #tier: RedisTier
  readonly #keys: KeyLayout
  readonly #codec: EntryCodec
  readonly #tags: TagBookkeeping
  readonly #pending: PendingInvalidations
  readonly #publisher: InvalidationPublisher
  readonly #events: CacheEvents

  constructor(parts: CacheWritesParts) {
    this.#freshness = parts.options.freshness
    this.#defaultPolicy = parts.defaultPolicy
    this.#view = parts.view
    this.#tier = parts.tier
    this.#keys = parts.keys
    this.#codec = parts.codec
    this.#tags = parts.tags
    this.#pending = parts.pending
    this.#publisher = parts.publisher
    this.#events = parts.events
  }

  async set<T>(key: string, value: T, options?: EntryOptions): Promise<void> {
    if (this.#view.closed) throw new CacheClosedError('set')
    assertKey('key', key)
    const policy = options === undefined ? this.#defaultPolicy : resolvePolicy(options, this.#freshness)
    const entry = this.#codec.build(key, value, policy)
    if (entry === undefined) return this.delete(key)
    const keys = this.#keys.entry(key)
    this.#view.invalidate(key)
    this.#view.put(key, entry, policy)
    try {
      await this.#tier.set(keys, this.#codec.text(entry), Math.max(1, entry.staleUntil - Date.now()))
      if (policy.tags.length > 0) await this.#tags.addMembers(policy, key)
      await this.#publisher.publish([key])
      this.#events.emit('set', key, SOURCE_SET)
    } catch (error) {
      // Redis may still hold the previous value and other processes their old copies: queue an
      // invalidation so that, once Redis answers, everyone reloads instead of serving the old value.
      this.#pending.queue({ kind: 'key', key })
      throw new CacheUnavailableError('set', { key, queuedForReplay: true }, error)
    }
  }

  /**
   * `set` for many entries: every value is serialized first (a value that cannot be is a
   * `CacheSerializationError` and nothing is written), then one SET script per key, a slice of
   * `MSET_SLICE` keys per write to the socket, one invalidation message for all. A key given twice keeps its last value.
   */
  async mset<T>(entries: readonly MsetEntry<T>[]): Promise<void> {
    if (this.#view.closed) throw new CacheClosedError('mset')
    if (!Array.isArray(entries)) throw new CacheOptionsError('mset', 'expected an array of { key, value }')
    const byKey = new Map<string, { policy: Policy; cached: CachedEntry | undefined }>()
    for (const item of entries) {
      if (typeof item !== 'object' || item === null) {
        throw new CacheOptionsError('mset', 'expected an array of { key, value }')
      }
      assertKey('key', item.key)
      const policy =
        item.options === undefined ? this.#defaultPolicy : resolvePolicy(item.options, this.#freshness)
      byKey.set(item.key, { policy, cached: this.#codec.build(item.key, item.value, policy) })
    }
    if (byKey.size === 0) return
    const keys = [...byKey.keys()]
    for (const [key, { policy, cached }] of byKey) {
      this.#view.invalidate(key)
      if (cached !== undefined) this.#view.put(key, cached, policy)
    }
    const writes = [...byKey]
    try {
      // In slices: each command's deadline (commandTimeoutMs) starts when it is sent, so tens of
      // thousands of scripts sent at once time out behind each other on a healthy Redis and open
      // the circuit. One slice is still one write to the socket.
      for (let start = 0; start < writes.length; start += MSET_SLICE) {
        await Promise.all(
          writes.slice(start, start + MSET_SLICE).map(async ([key, { policy, cached }]) => {
            const entry = this.#keys.entry(key)
            if (cached === undefined) return this.#tier.invalidate([entry])
            await this.#tier.set(entry, this.#codec.text(cached), Math.max(1, cached.staleUntil - Date.now()))
            if (policy.tags.length > 0) await this.#tags.addMembers(policy, key)
          }),
        )
      }
      await this.#publisher.publish(keys)
      for (const [key, { cached }] of byKey)
        this.#events.emit(cached === undefined ? 'delete' : 'set', key, SOURCE_SET)
    } catch (error) {
      for (const key of keys) this.#pending.queue({ kind: 'key', key })
      throw new CacheUnavailableError('mset', { keys, queuedForReplay: true }, error)
    }
  }

  async delete(key: string): Promise<void> {
    if (this.#view.closed) throw new CacheClosedError('delete')
    assertKey('key', key)
    this.#view.invalidate(key)
    try {
      await this.#tier.invalidate([this.#keys.entry(key)])
      await this.#publisher.publish([key])
      this.#events.emit('delete', key)
    } catch (error) {
      this.#pending.queue({ kind: 'key', key })
      throw new CacheUnavailableError('delete', { key, queuedForReplay: true }, error)
    }
  }

  async expire(key: string): Promise<void> {
    if (this.#view.closed) throw new CacheClosedError('expire')
    assertKey('key', key)
    const now = Date.now()
    const local = this.#view.local?.peek(key)
    this.#view.invalidate(key)
    // Keep our own copy as a stale one (SWR and grace may serve it); other processes drop theirs
    // and find the stale value in Redis.
    if (local !== undefined && local.staleUntil > now && this.#view.local !== undefined) {
      this.#view.local.set(key, { ...local, freshUntil: Math.min(local.freshUntil, now) })
    }
    try {
      await this.#tier.expire(this.#keys.entry(key), now)
      await this.#publisher.publish([key])
    } catch (error) {
      this.#pending.queue({ kind: 'key', key })
      throw new CacheUnavailableError('expire', { key, queuedForReplay: true }, error)
    }
  }

  async clear(): Promise<number> {
    if (this.#view.closed) throw new CacheClosedError('clear')
    this.#view.invalidateAll()
    for (const flight of this.#view.flights.values()) flight.invalidated = true
    this.#view.flights.clear()
    try {
      const removed = await this.#tier.clearPrefix(this.#keys.prefix)
      await this.#publisher.publishAll()
      return removed
    } catch (error) {
      throw new CacheUnavailableError('clear', { prefix: this.#keys.prefix, queuedForReplay: false }, error)
    }
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    if (this.#view.closed) throw new CacheClosedError('deleteMany')
    if (!Array.isArray(keys)) throw new CacheKeyError('key', keys)
    for (const key of keys) assertKey('key', key)
    const unique = [...new Set(keys)]
    if (unique.length === 0) return
    for (const key of unique) this.#view.invalidate(key)
    try {
      await this.#tier.invalidate(unique.map((key) => this.#keys.entry(key)))
      await this.#publisher.publish(unique)
      for (const key of unique) this.#events.emit('delete', key)
    } catch (error) {
      for (const key of unique) this.#pending.queue({ kind: 'key', key })
      throw new CacheUnavailableError('deleteMany', { keys: unique, queuedForReplay: true }, error)
    }
  }

  async deleteByTag(tag: string): Promise<void> {
    if (this.#view.closed) throw new CacheClosedError('deleteByTag')
    assertKey('tag', tag)
    // Names this call's take: if its reply is lost (the script may still run) or the deletion after
    // it fails, the replay finds the members this take moved aside instead of an emptied set.
    const takeId = randomBytes(9).toString('base64url')
    try {
      const members = await this.#tags.takeMembers(tag, takeId)
      for (const key of members) this.#view.invalidate(key)
      if (members.length > 0) {
        await this.#tier.invalidate(members.map((key) => this.#keys.entry(key)))
        await this.#publisher.publish(members)
        for (const key of members) this.#events.emit('delete', key)
      }
      await this.#tags.finishTake(tag, takeId)
    } catch (error) {
      this.#pending.queue({ kind: 'tag', tag, takeId })
      throw new CacheUnavailableError('deleteByTag', { tag, queuedForReplay: true }, error)
    }
  }
}
