import type { KeyLayout, TagKeys } from './key-layout.js'
import type { Logger } from './metrics.js'
import type { RedisClient, RedisTier } from './redis-tier.js'

/** An invalidation that could not reach Redis, kept until Redis answers again. */
export type PendingInvalidation =
  | { kind: 'key'; key: string }
  /** `takeId` names the take of the failed `deleteByTag` (see TAKE_TAG_MEMBERS). */
  | { kind: 'tag'; tag: string; takeId: string }

const MAX_PENDING_INVALIDATIONS = 100_000

export interface PendingInvalidationsOptions {
  tier: RedisTier
  keys: KeyLayout
  logger: Logger | undefined
  /** Encodes the bus message for replayed keys; `undefined` when there is no local tier to tell. */
  busMessage: ((keys: string[]) => string) | undefined
  onQueued: () => void
  /**
   * The keys a replay removed from Redis, for this process's own local tier: the bus skips its own
   * messages, and a replayed `deleteByTag` learns its keys only now.
   */
  onReplayed: (keys: string[]) => void
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
    // Each failed deleteByTag of a tag has its own take to finish: one entry per take, not per tag.
    this.#pending.set(item.kind === 'key' ? `key:${item.key}` : `tag:${item.takeId}:${item.tag}`, item)
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
    const { tier, keys: layout, busMessage, onReplayed } = this.#options
    const items = [...this.#pending.entries()]
    const keys: string[] = []
    const takes: { tag: TagKeys; takeId: string }[] = []
    for (const [, item] of items) {
      if (item.kind === 'key') keys.push(item.key)
      else takes.push({ tag: layout.tag(item.tag), takeId: item.takeId })
    }
    for (const { tag, takeId } of takes) keys.push(...(await tier.takeTagMembersRaw(tag, takeId, via)))
    if (keys.length > 0) {
      await tier.invalidateRaw(
        keys.map((key) => layout.entry(key)),
        via,
      )
      onReplayed(keys)
      if (busMessage !== undefined) await tier.publishRaw(layout.channel, busMessage(keys), via)
    }
    for (const { tag, takeId } of takes) await tier.finishTakeRaw(tag, takeId, true, via)
    // Only what was replayed: the same key queued again meanwhile (a delete that failed while
    // this replay ran) replaced its entry, and that newer invalidation must still go out.
    for (const [id, item] of items) if (this.#pending.get(id) === item) this.#pending.delete(id)
  }
}
