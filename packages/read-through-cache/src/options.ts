import { CacheOptionsError } from './errors.js'
import {
  DEFAULT_FRESHNESS,
  duration,
  type FreshnessOptions,
  type ResolvedFreshness,
  resolveFreshness,
} from './freshness-options.js'
import type { CacheMetricsHook, Logger, MetricsHook } from './metrics.js'
import type { RedisClient } from './redis-tier.js'
import { type Serializer, typedJsonSerializer } from './serializer.js'

export type { FreshnessOptions, ResolvedFreshness } from './freshness-options.js'
export type { CacheCounter, CacheLogger, CacheMetricsHook, Logger, MetricsHook } from './metrics.js'

/** Options of the in-process (L1) tier. */
export interface LocalTierOptions {
  /**
   * Maximum number of entries; the least recently used is evicted beyond it.
   * @default 10_000
   */
  maxEntries?: number
  /**
   * Maximum total size of the local tier, as an estimate of the heap it holds: each entry counts
   * 2 bytes per character of its key and of its serialized value, plus 160 bytes of bookkeeping.
   * (A parsed JSON object takes about 2 bytes of heap per serialized character, a string value
   * about 1.)
   * @default 67_108_864 (64 MiB)
   */
  maxBytes?: number
  /**
   * An entry is fresh in the local tier for at most this long (less when its Redis TTL ends first).
   * Bounds how long a process can serve a value whose invalidation message it missed.
   * @default the entry's own TTL
   */
  ttlMs?: number
  /**
   * While Redis or the invalidation channel is down, other processes' invalidations cannot reach
   * this process. The local tier keeps being filled (so a Redis outage does not turn every read
   * into a load), but each entry is trusted for at most this long from when it was filled or the
   * outage began: the staleness bound during an outage. Lower it for fresher reads, raise it for
   * fewer loads (during an outage each key loads about once per this period, per process).
   * @default 5_000
   */
  outageTtlMs?: number
}

export interface ReadThroughCacheOptions extends FreshnessOptions {
  /**
   * The user's ioredis `Redis` or `Cluster` instance (required unless `memoryOnly`). Not closed by
   * `close()`.
   */
  redis?: RedisClient
  /**
   * No Redis at all: the local tier is the whole cache (tests, single-process apps). Loads are
   * single-flight within the process, invalidations and tags act on the local tier. Requires a
   * local tier and no `redis`.
   * @default false
   */
  memoryOnly?: boolean
  /**
   * Namespace prepended to every Redis key and to the invalidation channel. Must not contain `{` or `}`.
   * @default 'rtc:'
   */
  keyPrefix?: string
  /** @deprecated Use `keyPrefix` (the name every @scale package uses); removed in the next minor. */
  prefix?: string
  /**
   * The in-process tier, or `false` for Redis only. Enabling it opens one extra Redis connection
   * (a `duplicate()` of `redis`) for the invalidation channel.
   * @default { maxEntries: 10_000, maxBytes: 64 MiB }
   */
  local?: LocalTierOptions | false
  /**
   * Leases: one loader per key across processes, and no stale sets. `false` only for experiments
   * (it is the control of the stale-set test): every process then loads and writes unguarded.
   * @default true
   */
  leases?: boolean
  /**
   * How long a lease is held at most. A loader slower than this loses its exclusivity (another
   * process may load too); its value is still written unless an invalidation happened.
   * @default 10_000
   */
  leaseTtlMs?: number
  /**
   * How long a caller without a stale value waits for another process's load before calling the
   * loader itself (without writing: it holds no lease).
   * @default 5_000
   */
  leaseWaitTimeoutMs?: number
  /**
   * Every Redis command is abandoned after this long and counted as a failure.
   * @default 500
   */
  commandTimeoutMs?: number
  /**
   * Circuit breaker around Redis.
   * @default { failureThreshold: 5, openDurationMs: 2_000 }
   */
  circuitBreaker?: {
    /**
     * Consecutive failed commands that open the circuit.
     * @default 5
     */
    failureThreshold?: number
    /**
     * How long the circuit stays open before one probe command is let through.
     * @default 2_000
     */
    openDurationMs?: number
  }
  /**
   * Maximum concurrent loader calls in this process (all keys together); further calls queue.
   * Keeps a Redis outage from becoming a database stampede.
   * @default 32
   */
  maxConcurrentLoads?: number
  /**
   * On a single `Redis`, cork its socket for the rest of the event-loop turn in which the cache
   * sends a command (until `setImmediate`, via @scale/ioredis-coalesce), so the commands of many
   * concurrent calls leave in one write. This reaches into
   * ioredis' connection (`redis.stream`, not part of its documented API): if a future ioredis
   * has no such stream, or the client is not `ready`, the cache simply does not cork. Set `false`
   * to never touch your client's socket (or when it already uses `enableAutoPipelining`).
   * @default true
   */
  coalesceWrites?: boolean
  /**
   * Turns values into Redis strings and back. The default is JSON that keeps `Date`, `Map`, `Set`
   * and `BigInt` (`typedJsonSerializer`); `jsonSerializer` is plain JSON.
   * @default typedJsonSerializer
   */
  serializer?: Serializer
  /**
   * Optional pino-compatible logger (`pino()` passes as is); the cache only warns.
   * @default undefined (silent)
   */
  logger?: Logger
  /**
   * Optional metrics hook, `increment(name, labels?, value?)` on every counter change (`stats()`
   * has the same counters; names in `CACHE_METRICS`). The deprecated 0.x shape
   * `increment(counter, by)` still works for one minor.
   * @default undefined
   */
  metrics?: MetricsHook | CacheMetricsHook
}

export interface ResolvedOptions {
  /** `undefined` in memory-only mode. */
  redis: RedisClient | undefined
  prefix: string
  freshness: ResolvedFreshness
  local: (Required<Omit<LocalTierOptions, 'ttlMs'>> & { ttlMs: number | undefined }) | false
  leases: boolean
  leaseTtlMs: number
  leaseWaitTimeoutMs: number
  commandTimeoutMs: number
  failureThreshold: number
  openDurationMs: number
  maxConcurrentLoads: number
  coalesceWrites: boolean
  serializer: Serializer
  logger: Logger | undefined
  metrics: MetricsHook | CacheMetricsHook | undefined
}

export function resolveOptions(options: ReadThroughCacheOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new CacheOptionsError('options', 'pass an options object with at least { redis }')
  }
  const redis = options.redis as unknown as { evalsha?: unknown; duplicate?: unknown } | undefined
  const memoryOnly = options.memoryOnly === true
  if (options.memoryOnly !== undefined && typeof options.memoryOnly !== 'boolean') {
    throw new CacheOptionsError('memoryOnly', `expected a boolean, got ${typeof options.memoryOnly}`)
  }
  if (memoryOnly && redis !== undefined) {
    throw new CacheOptionsError('memoryOnly', 'pass either redis or memoryOnly: true, not both')
  }
  if (memoryOnly && options.local === false) {
    throw new CacheOptionsError('local', 'memoryOnly needs the local tier (it is the whole cache)')
  }
  if (
    !memoryOnly &&
    (!redis || typeof redis.evalsha !== 'function' || typeof redis.duplicate !== 'function')
  ) {
    throw new CacheOptionsError(
      'redis',
      'expected an ioredis Redis or Cluster instance (or memoryOnly: true for a cache without Redis)',
    )
  }
  if (
    options.keyPrefix !== undefined &&
    options.prefix !== undefined &&
    options.keyPrefix !== options.prefix
  ) {
    throw new CacheOptionsError('keyPrefix', 'pass keyPrefix only (prefix is its deprecated name)')
  }
  const prefix = options.keyPrefix ?? options.prefix ?? 'rtc:'
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    throw new CacheOptionsError(
      options.keyPrefix === undefined && options.prefix !== undefined ? 'prefix' : 'keyPrefix',
      'expected a string without "{" or "}" (they would break Cluster hash tags)',
    )
  }
  const local = options.local ?? {}
  const serializer = options.serializer ?? typedJsonSerializer
  if (typeof serializer.serialize !== 'function' || typeof serializer.deserialize !== 'function') {
    throw new CacheOptionsError(
      'serializer',
      'expected { serialize(value): string, deserialize(text): unknown }',
    )
  }
  const maxConcurrentLoads = duration('maxConcurrentLoads', options.maxConcurrentLoads, 32, 1)
  const leaseTtlMs = duration('leaseTtlMs', options.leaseTtlMs, 10_000, 1)
  return {
    redis: options.redis,
    prefix,
    freshness: resolveFreshness(options, DEFAULT_FRESHNESS),
    local:
      local === false
        ? false
        : {
            maxEntries: duration('local.maxEntries', local.maxEntries, 10_000, 1),
            maxBytes: duration('local.maxBytes', local.maxBytes, 64 * 1024 * 1024, 1),
            ttlMs: local.ttlMs === undefined ? undefined : duration('local.ttlMs', local.ttlMs, 0, 1),
            outageTtlMs: duration('local.outageTtlMs', local.outageTtlMs, 5_000, 1),
          },
    leases: options.leases ?? true,
    leaseTtlMs,
    leaseWaitTimeoutMs: duration('leaseWaitTimeoutMs', options.leaseWaitTimeoutMs, 5_000),
    commandTimeoutMs: duration('commandTimeoutMs', options.commandTimeoutMs, 500, 1),
    failureThreshold: duration(
      'circuitBreaker.failureThreshold',
      options.circuitBreaker?.failureThreshold,
      5,
      1,
    ),
    openDurationMs: duration(
      'circuitBreaker.openDurationMs',
      options.circuitBreaker?.openDurationMs,
      2_000,
      1,
    ),
    maxConcurrentLoads,
    coalesceWrites: options.coalesceWrites ?? true,
    serializer,
    logger: options.logger,
    metrics: options.metrics,
  }
}
