import type { Kysely } from 'kysely'
import { ShardingOptionsError } from './errors.js'
import type { ShardMapStore } from './map-store.js'
import type { Logger, MetricsHook } from './observability.js'
import { ShardMap } from './shard-map.js'

/** Options of {@link createShardedKysely}. */
export interface ShardedKyselyOptions<DB> {
  /**
   * Every shard by name: a `Kysely<DB>`, or a replicated one from `@scale/read-replica`. List
   * a shard before the map names it (add the fifth shard here, then move buckets to it).
   */
  shards: Readonly<Record<string, Kysely<DB>>>
  /** A fixed map (`createShardMap(...)`) or a store routers load it from and watch. */
  map: ShardMap | ShardMapStore
  /**
   * How often the store is polled for a new epoch (besides LISTEN/NOTIFY). 0 turns polling off.
   * @default 1000
   */
  refreshIntervalMs?: number
  /**
   * A router whose map the store has not confirmed for this long reloads it before it routes a
   * query by key (polling normally keeps it fresh, so this costs nothing); if the store cannot be
   * reached the query fails with `ShardMapStaleError` rather than risk the old shard. Keep it
   * below the mover's `cleanupDelayMs`. 0 turns the check off.
   * @default 3000
   */
  maxMapAgeMs?: number
  /**
   * How long one call to the map store may take before the store counts as unreachable: the first
   * load in `createShardedKysely()`, opening its LISTEN subscription, and every reload. A hung
   * control database then fails the call with `ShardMapStaleError` instead of holding it: at
   * start-up `createShardedKysely()` rejects (`context.startup`) and may be called again; later,
   * a query by key whose map is older than `maxMapAgeMs` fails and the next one tries again.
   * @default 1000
   */
  mapLoadTimeoutMs?: number
  /**
   * How long a write refused by a shard that handed its bucket over waits for the new map
   * (reloaded at once, then with backoff) before it fails with `ShardMapStaleError`.
   * @default 10000
   */
  staleRetryMs?: number
  /**
   * Default per-shard deadline of a scatter-gather query (`allShards()`), in ms from 1 to
   * 2^31 - 1; `Infinity` means none.
   * @default 10000
   */
  scatterDeadlineMs?: number
  /**
   * How ORDER BY, MIN and MAX compare text when merging shards. The default compares code
   * points, which is Postgres' `"C"` collation; pass `new Intl.Collator(...).compare` to match
   * another collation.
   * @default code point order
   */
  compareText?: (a: string, b: string) => number
  /**
   * A pino-compatible logger (new epochs, refused writes, metrics hook failures).
   * @default silent
   */
  logger?: Logger
  /**
   * Metrics hook: `sharding_route_total{shard}`, `sharding_fenced_retries_total`,
   * `sharding_scatter_ms`, `sharding_map_epoch_changes_total`.
   * @default undefined
   */
  metrics?: MetricsHook
}

export interface ResolvedOptions<DB> {
  readonly shards: ReadonlyMap<string, Kysely<DB>>
  readonly map: ShardMap | undefined
  readonly store: ShardMapStore | undefined
  readonly refreshIntervalMs: number
  readonly staleRetryMs: number
  readonly maxMapAgeMs: number
  readonly mapLoadTimeoutMs: number
  readonly scatterDeadlineMs: number
  readonly compareText: (a: string, b: string) => number
}

export function codePointCompare(a: string, b: string): number {
  // Postgres "C" order is byte order of UTF-8, which is code point order (UTF-16 units differ
  // above U+FFFF), so compare by code point.
  const left = a[Symbol.iterator]()
  const right = b[Symbol.iterator]()
  for (;;) {
    const x = left.next()
    const y = right.next()
    if (x.done || y.done) return x.done === y.done ? 0 : x.done ? -1 : 1
    const diff = (x.value.codePointAt(0) ?? 0) - (y.value.codePointAt(0) ?? 0)
    if (diff !== 0) return diff
  }
}

/** The longest delay a Node timer takes; above it Node fires after 1 ms instead. */
export const MAX_TIMER_MS = 2 ** 31 - 1

function duration(name: string, value: number | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > MAX_TIMER_MS)
    throw new ShardingOptionsError(
      name,
      `must be a number of milliseconds from ${min} to ${MAX_TIMER_MS}, got ${String(value)}`,
    )
  return value
}

/** A deadline: 1 .. 2^31 - 1 ms, or `Infinity` for none. */
export function deadline(name: string, value: number | undefined, fallback: number): number {
  if (value === Number.POSITIVE_INFINITY) return value
  if (value !== undefined && (typeof value !== 'number' || !(value >= 1) || value > MAX_TIMER_MS))
    throw new ShardingOptionsError(
      name,
      `must be a number of milliseconds from 1 to ${MAX_TIMER_MS}, or Infinity for no deadline; got ${String(value)}`,
    )
  return value ?? fallback
}

export function resolveOptions<DB>(options: ShardedKyselyOptions<DB>): ResolvedOptions<DB> {
  if (options === null || typeof options !== 'object')
    throw new ShardingOptionsError('options', 'an options object is required')
  const entries = Object.entries(options.shards ?? {})
  if (entries.length === 0)
    throw new ShardingOptionsError('shards', 'name at least one shard: { shards: { s1: db1, ... } }')
  for (const [name, db] of entries) {
    if (typeof (db as { getExecutor?: unknown })?.getExecutor !== 'function')
      throw new ShardingOptionsError('shards', `shard "${name}" is not a Kysely instance`)
  }
  const map = options.map instanceof ShardMap ? options.map : undefined
  const store = map ? undefined : (options.map as ShardMapStore | undefined)
  if (!map && typeof store?.load !== 'function')
    throw new ShardingOptionsError(
      'map',
      'pass a ShardMap (createShardMap) or a store (postgresMapStore, fileMapStore)',
    )
  if (options.compareText !== undefined && typeof options.compareText !== 'function')
    throw new ShardingOptionsError('compareText', 'must be a function (a, b) => number')
  return {
    shards: new Map(entries),
    map,
    store,
    refreshIntervalMs: duration('refreshIntervalMs', options.refreshIntervalMs, 1_000),
    staleRetryMs: duration('staleRetryMs', options.staleRetryMs, 10_000),
    maxMapAgeMs: duration('maxMapAgeMs', options.maxMapAgeMs, 3_000),
    mapLoadTimeoutMs: duration('mapLoadTimeoutMs', options.mapLoadTimeoutMs, 1_000, 1),
    scatterDeadlineMs: deadline('scatterDeadlineMs', options.scatterDeadlineMs, 10_000),
    compareText: options.compareText ?? codePointCompare,
  }
}
