import type { KeyLayout, TagKeys } from './key-layout.js'
import type { CacheLogger } from './options.js'
import type { RedisClient, RedisTier } from './redis-tier.js'

/** An invalidation that could not reach Redis, kept until Redis answers again. */
export type PendingInvalidation = { kind: 'key'; key: string } | { kind: 'tag'; tag: string }

const MAX_PENDING_INVALIDATIONS = 100_000

export interface PendingInvalidationsOptions {
  tier: RedisTier
  keys: KeyLayout
  logger: CacheLogger | undefined
  /** Encodes the bus message for replayed keys; `undefined` when there is no local tier to tell. */
  busMessage: ((keys: string[]) => string) | undefined
  onQueued: () => void
}

/** The invalidations made during a Redis outage, and their replay once Redis is back. */
export class PendingInvalidations {
  readonly #options: PendingInvalidationsOptions
  readonly #pending = new Map<string, PendingInvalidation>()
  #replay: Promise<void> | undefined
  #replayVia: Promise<void> | undefined

  constructor(options: PendingInvalidationsOptions) {
    this.#options = options
  }

  get size(): number {
    return this.#pending.size
  }

  queue(item: PendingInvalidation): void {
    if (this.#pending.size >= MAX_PENDING_INVALIDATIONS) {
      this.#options.logger?.warn(
        { pending: this.#pending.size },
        '[@scale/read-through-cache] too many invalidations queued during a Redis outage; dropping the oldest',
      )
      const oldest = this.#pending.keys().next()
      if (!oldest.done) this.#pending.delete(oldest.value)
    }
    this.#pending.set(`${item.kind}:${item.kind === 'key' ? item.key : item.tag}`, item)
    this.#options.onQueued()
  }

  /**
   * Replays the invalidations queued during an outage before any other command reaches Redis, so
   * no process reads a value that was invalidated while Redis was down. Runs as the breaker's probe,
   * or over `via`, a connection of its own to the same server (see ReplayDriver).
   */
  replay(via?: RedisClient): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve()
    // One replay at a time per connection: a replay through the user's client may sit in its
    // offline queue until that client reconnects, and must not hold up one over the replay connection.
    if (via === undefined) {
      this.#replay ??= this.#run(undefined).finally(() => {
        this.#replay = undefined
      })
      return this.#replay
    }
    this.#replayVia ??= this.#run(via).finally(() => {
      this.#replayVia = undefined
    })
    return this.#replayVia
  }

  async #run(via: RedisClient | undefined): Promise<void> {
    const { tier, keys: layout, busMessage } = this.#options
    const items = [...this.#pending.entries()]
    const keys: string[] = []
    const tags: TagKeys[] = []
    for (const [, item] of items) {
      if (item.kind === 'key') keys.push(item.key)
      else tags.push(layout.tag(item.tag))
    }
    for (const tag of tags) keys.push(...(await tier.takeTagMembersRaw(tag, via)))
    if (keys.length > 0) {
      await tier.invalidateRaw(
        keys.map((key) => layout.entry(key)),
        via,
      )
      if (busMessage !== undefined) await tier.publishRaw(layout.channel, busMessage(keys), via)
    }
    // Only what was replayed: the same key queued again meanwhile (a delete that failed while
    // this replay ran) replaced its entry, and that newer invalidation must still go out.
    for (const [id, item] of items) if (this.#pending.get(id) === item) this.#pending.delete(id)
  }
}
