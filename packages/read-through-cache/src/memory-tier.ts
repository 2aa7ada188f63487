import { CacheUnavailableError } from './errors.js'
import type { EntryKeys, TagKeys } from './key-layout.js'
import type { LeaseRead, RedisTier, TagState } from './redis-tier.js'

/** The public members of a class (what a stand-in must provide). */
type PublicOf<T> = { [K in keyof T]: T[K] }

/**
 * The tier of `memoryOnly` caches: no Redis. Values live only in the local tier, so every value
 * command is a no-op and reads find nothing here; `available` is false, so reads and flights never
 * take the Redis paths (`FlightLoader` loads locally). What it does keep is the tag bookkeeping —
 * members and epochs, with the same semantics as the Lua scripts — so `deleteByTag` and its
 * no-stale-set check work in memory too.
 */
export class MemoryTier implements PublicOf<RedisTier> {
  readonly isCluster = false
  readonly #members = new Map<string, Set<string>>()
  readonly #epochs = new Map<string, { epoch: number; bumpedAt: number }>()

  get available(): boolean {
    return false
  }

  async replayPending(): Promise<void> {}

  getOrLease(): Promise<LeaseRead> {
    return Promise.reject(new CacheUnavailableError('getOrLease', { reason: 'memory-only' }))
  }

  async releaseWithOutcome(): Promise<boolean> {
    return true
  }

  async setIfLease(): Promise<boolean> {
    return false
  }

  async releaseLease(): Promise<boolean> {
    return true
  }
  async set(): Promise<void> {}
  async setUnguarded(): Promise<void> {}

  async get(): Promise<string | null> {
    return null
  }

  async mget(entries: EntryKeys[]): Promise<(string | null)[]> {
    return entries.map(() => null)
  }

  async clearPrefix(): Promise<number> {
    const removed = this.#members.size + this.#epochs.size
    this.#members.clear()
    this.#epochs.clear()
    return removed
  }

  async expire(): Promise<void> {}
  async invalidate(): Promise<void> {}
  async invalidateRaw(): Promise<void> {}

  async tagEpochs(tags: TagKeys[]): Promise<(string | null)[]> {
    return tags.map((tag) => this.#epochOf(tag))
  }

  async addTagMembers(tags: TagKeys[], member: string): Promise<TagState[]> {
    return tags.map((tag) => {
      let members = this.#members.get(tag.members)
      if (members === undefined) {
        members = new Set()
        this.#members.set(tag.members, members)
      }
      members.add(member)
      return { epoch: this.#epochOf(tag), bumpedAt: this.#epochs.get(tag.epoch)?.bumpedAt ?? 0 }
    })
  }

  takeTagMembers(tag: TagKeys): Promise<string[]> {
    return this.takeTagMembersRaw(tag)
  }

  async finishTake(): Promise<void> {}
  async finishTakeRaw(): Promise<void> {}

  /** Bumps the epoch first, then takes the members (the order of TAKE_TAG_MEMBERS). */
  async takeTagMembersRaw(tag: TagKeys): Promise<string[]> {
    const current = this.#epochs.get(tag.epoch)?.epoch ?? 0
    this.#epochs.set(tag.epoch, { epoch: current + 1, bumpedAt: Date.now() })
    const members = [...(this.#members.get(tag.members) ?? [])]
    this.#members.delete(tag.members)
    return members
  }

  async publish(): Promise<unknown> {
    return 0
  }

  async publishRaw(): Promise<unknown> {
    return 0
  }

  #epochOf(tag: TagKeys): string | null {
    const state = this.#epochs.get(tag.epoch)
    return state === undefined ? null : String(state.epoch)
  }
}
