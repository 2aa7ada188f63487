import type { CacheCounters } from './cache-counters.js'
import type { Policy } from './entry-policy.js'
import type { Flight } from './flight.js'
import type { FlightFallbacks } from './flight-fallbacks.js'
import type { KeyLayout } from './key-layout.js'
import type { Loader } from './loader.js'
import { effectivePolicy, lateTagsOf } from './loader-call.js'
import type { LocalEntry } from './local-tier.js'
import type { TagBookkeeping } from './tag-bookkeeping.js'

const SOURCE_LOAD = { source: 'load' } as const

/** What a memory-only load works with. */
export interface MemoryLoadParts {
  fallbacks: FlightFallbacks
  tags: TagBookkeeping
  keys: KeyLayout
  counters: CacheCounters
}

/**
 * A flight's load in a memory-only cache: the local tier is the only store, so this is the
 * no-Redis load plus the tag bookkeeping (kept by `MemoryTier`). A `delete` during the load marks
 * the flight invalidated (the local tier then refuses its value); a `deleteByTag` during the load
 * is caught by the same epoch check as on Redis, so the value is not kept either.
 */
export async function loadInMemory(
  parts: MemoryLoadParts,
  flight: Flight,
  loader: Loader<unknown>,
  policy: Policy,
  stale: LocalEntry | undefined,
): Promise<void> {
  if (!policy.refreshEarly) parts.counters.miss(flight.key)
  const tags = parts.tags.keysOf(policy)
  const epochsBefore = tags.length > 0 ? await parts.tags.epochsBeforeLoad(tags) : []
  const keep = async (): Promise<boolean> => {
    const lateTags = lateTagsOf(policy, flight)
    const kept =
      (tags.length === 0 && lateTags.length === 0) ||
      (await parts.tags.addMembersAfterLoad(
        tags,
        parts.keys.entry(flight.key),
        effectivePolicy(policy, flight),
        epochsBefore,
        parts.tags.keysOf(lateTags),
        flight.startedAt,
      ))
    if (kept && !flight.invalidated) parts.counters.events.emit('set', flight.key, SOURCE_LOAD)
    return kept
  }
  await parts.fallbacks.loadWithoutRedis(flight.key, loader, policy, stale, flight, keep)
}
