import { CacheKeyError, CacheOptionsError } from './errors.js'
import { type FreshnessOptions, type ResolvedFreshness, resolveFreshness } from './freshness-options.js'

/** Per-call options of `getOrLoad`, `getOrLoadMany` and `set`. */
export interface EntryOptions extends FreshnessOptions {
  /**
   * Tags of the entry, for `deleteByTag`.
   * @default []
   */
  tags?: readonly string[]
  /**
   * Use the in-process tier for this call.
   * @default true (when the cache has one)
   */
  local?: boolean
  /**
   * Load now even if a fresh value is cached (still one load per key fleet-wide: callers that come
   * while it runs wait for it), and cache what it returns. For a read that must not be stale, e.g.
   * right after the user changed the data in another system.
   * @default false
   */
  forceFresh?: boolean
  /**
   * Validates a cached value before it is returned (`getOrLoad`): a value for which this returns
   * `false` (an old shape after a deploy, say) is treated as a miss and loaded again, and the new
   * value replaces it. Not applied to cached "not found" entries, nor to what the loader returns.
   * @default undefined (no check)
   */
  checkValue?: (value: unknown) => boolean
  /**
   * Eager refresh: a hit on a value with less than this long left to be fresh is answered at once
   * and starts one background refresh (one per key fleet-wide, under the lease), so a hot key is
   * reloaded before it expires instead of making its callers wait or serve stale. 0: off.
   * @default 0
   */
  refreshThresholdMs?: number
}

/** The per-call options with every default filled in. */
export interface Policy extends ResolvedFreshness {
  tags: readonly string[]
  local: boolean
  forceFresh: boolean
  checkValue: ((value: unknown) => boolean) | undefined
  refreshThresholdMs: number
  /** Internal: this flight is an eager refresh (see `refreshThresholdMs`). */
  refreshEarly: boolean
}

function refreshThreshold(value: number | undefined): number {
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new CacheOptionsError('refreshThresholdMs', `expected a finite number >= 0, got ${String(value)}`)
  }
  return value
}

export function assertKey(what: 'key' | 'tag', value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) throw new CacheKeyError(what, value)
}

export function defaultPolicy(freshness: ResolvedFreshness): Policy {
  return {
    ...freshness,
    tags: [],
    local: true,
    forceFresh: false,
    checkValue: undefined,
    refreshThresholdMs: 0,
    refreshEarly: false,
  }
}

export function resolvePolicy(options: EntryOptions, freshness: ResolvedFreshness): Policy {
  const tags = options.tags ?? []
  // A string is iterable: without this, `tags: 'team:7'` would pass as tags 't', 'e', ... or fail
  // only after the value was written.
  if (!Array.isArray(tags)) throw new CacheOptionsError('tags', 'expected an array of tags')
  for (const tag of tags) assertKey('tag', tag)
  return {
    ...resolveFreshness(options, freshness),
    tags,
    local: options.local ?? true,
    forceFresh: options.forceFresh === true,
    checkValue: options.checkValue,
    refreshThresholdMs: refreshThreshold(options.refreshThresholdMs),
    refreshEarly: false,
  }
}

/** Whether a cached entry may be returned under `policy.checkValue` (a "not found" entry always may). */
export function passesCheck(policy: Policy, entry: { value: unknown; negative: boolean }): boolean {
  return policy.checkValue === undefined || entry.negative || policy.checkValue(entry.value) === true
}
