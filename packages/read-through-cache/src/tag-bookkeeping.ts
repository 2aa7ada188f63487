import type { Policy } from './entry-policy.js'
import type { EntryKeys, KeyLayout, TagKeys } from './key-layout.js'
import type { RedisTier } from './redis-tier.js'

export interface TagBookkeepingOptions {
  tier: RedisTier
  keys: KeyLayout
  /** Tells the other processes' local tiers to drop keys (the undo of a racing write). */
  publish: (keys: string[]) => Promise<void>
  /** Called when a racing `deleteByTag` is caught, before the write is undone. */
  onStaleSetPrevented: () => void
}

// Frozen: shared by every untagged load, so a push would throw instead of leaking into others.
const NO_TAG_KEYS = Object.freeze([]) as unknown as TagKeys[]

/**
 * Tag membership of entries and the tag epochs that let a tagged load notice a `deleteByTag` that
 * ran while it loaded.
 */
export class TagBookkeeping {
  readonly #tier: RedisTier
  readonly #keys: KeyLayout
  readonly #options: TagBookkeepingOptions

  constructor(options: TagBookkeepingOptions) {
    this.#tier = options.tier
    this.#keys = options.keys
    this.#options = options
  }

  keysOf(policyOrTags: Policy | readonly string[]): TagKeys[] {
    const tags = Array.isArray(policyOrTags) ? policyOrTags : (policyOrTags as Policy).tags
    // Most entries have no tags: no new array on every load then.
    return tags.length === 0 ? NO_TAG_KEYS : tags.map((tag) => this.#keys.tag(tag))
  }

  /** Read before loading: a `deleteByTag` that bumps an epoch after this point is detected by `addMembersAfterLoad`. */
  epochsBeforeLoad(tags: TagKeys[]): Promise<(string | null)[]> {
    return this.#tier.tagEpochs(tags)
  }

  /** Records `key` as a member of its tags (a `set`: no load to race with). */
  async addMembers(policy: Policy, key: string): Promise<void> {
    await this.#tier.addTagMembers(this.keysOf(policy), key, membershipTtlMs(policy))
  }

  /**
   * Records the entry as a member of its tags after its loaded value was written, and undoes that
   * write if a `deleteByTag` ran during the load. Returns whether the value is still stored.
   *
   * `tags` were known before the load and their epochs read then (`epochsBefore`): any bump since
   * is caught exactly. `lateTags` were declared by the loader (`ctx.setTags`), so no epoch was read
   * before; for them a bump recorded at or after `loadStartedAt - LATE_TAG_CLOCK_MARGIN_MS` (the
   * bump's time is the tag's Redis server clock, `loadStartedAt` this process's) counts as racing.
   */
  async addMembersAfterLoad(
    tags: TagKeys[],
    entry: EntryKeys,
    policy: Policy,
    epochsBefore: readonly (string | null)[],
    lateTags: TagKeys[] = [],
    loadStartedAt = 0,
  ): Promise<boolean> {
    if (await this.joinBeforeWrite(tags, entry, policy, epochsBefore, lateTags, loadStartedAt)) return true
    // A deleteByTag ran during the load. It bumped the epoch before reading the members, so
    // either it saw our member and deleted the value, or we see its bump now: undo the write.
    await this.#tier.invalidate([entry])
    await this.#options.publish([entry.key])
    return false
  }

  /**
   * Records the entry as a member of its tags BEFORE its loaded value is written, and says whether
   * the value may be written: `false` if a `deleteByTag` of one of them ran during the load (judged
   * as in `addMembersAfterLoad`). When it returns `true`, any later `deleteByTag` bumps the epoch
   * after our member was added, so it takes the member and deletes the value and the lease: the
   * compare-and-set write that follows is then refused, or its value deleted before that
   * `deleteByTag` resolves. So no reader sees a value a resolved `deleteByTag` should have removed.
   */
  async joinBeforeWrite(
    tags: TagKeys[],
    entry: EntryKeys,
    policy: Policy,
    epochsBefore: readonly (string | null)[],
    lateTags: TagKeys[],
    loadStartedAt: number,
  ): Promise<boolean> {
    const states = await this.#tier.addTagMembers([...tags, ...lateTags], entry.key, membershipTtlMs(policy))
    const racedSince = loadStartedAt - LATE_TAG_CLOCK_MARGIN_MS
    const raced = states.some((state, i) =>
      i < tags.length ? state.epoch !== epochsBefore[i] : state.bumpedAt >= racedSince,
    )
    if (raced) this.#options.onStaleSetPrevented()
    return !raced
  }

  /** Takes the members of `tag` into the take `takeId`, bumping its epoch first. */
  takeMembers(tag: string, takeId: string): Promise<string[]> {
    return this.#tier.takeTagMembers(this.#keys.tag(tag), takeId)
  }

  /** Ends the take once its members' keys are deleted (a failure leaves it to expire in a day). */
  finishTake(tag: string, takeId: string): Promise<void> {
    return this.#tier.finishTake(this.#keys.tag(tag), takeId).catch(() => {})
  }
}

/**
 * How far the clocks of the app servers and the Redis nodes may disagree for `ctx.setTags` to keep
 * its no-stale-set guarantee. Within this time after a `deleteByTag(t)`, a load that declares `t`
 * late is not kept (one more load later, never a stale value).
 */
export const LATE_TAG_CLOCK_MARGIN_MS = 1_000

/** How long a tag's member set lives: as long as the longest-lived entry that may be in it, plus a margin. */
function membershipTtlMs(policy: Policy): number {
  return (
    Math.ceil(
      policy.ttlMs + Math.max(policy.staleWhileRevalidateMs, policy.gracePeriodMs, policy.negativeTtlMs),
    ) + 1_000
  )
}
