import type { CircuitState } from './circuit-breaker.js'
import { CacheOptionsError } from './errors.js'
import type { RedisClient } from './redis-tier.js'
import { type Serializer, typedJsonSerializer } from './serializer.js'

/** pino-compatible logger: the cache only ever warns. */
export interface CacheLogger {
  warn(object: Record<string, unknown>, message?: string): void
}

/** Names of the counters in `stats()` and of the `metrics.increment` calls. */
export type CacheCounter =
  | 'hitsLocal'
  | 'hitsRedis'
  | 'misses'
  | 'loads'
  | 'loadErrors'
  | 'coalescedWaits'
  | 'staleServed'
  | 'staleSetsPrevented'
  | 'redisErrors'
  | 'invalidationsQueued'

/** Metrics hook (Prometheus counters, StatsD...). Called synchronously; keep it cheap. */
export interface CacheMetricsHook {
  increment(counter: CacheCounter, by: number): void
  /** Optional: called on every circuit transition (e.g. to set a gauge); `stats().circuit` has the current state. */
  circuitState?(state: CircuitState): void
}

/** Freshness policy; every field can also be set per call. */
export interface FreshnessOptions {
  /**
   * How long a loaded value is fresh.
   * @default 60_000
   */
  ttlMs?: number
  /**
   * Fraction of the TTL removed at random (0.1: the TTL is between 90% and 100% of `ttlMs`), so
   * keys written together do not all expire together.
   * @default 0.1
   */
  jitter?: number
  /**
   * After the TTL, for this long the stale value is returned at once while one refresh runs in
   * the background (across all processes: the lease holder refreshes, the others serve stale).
   * @default 0
   */
  staleWhileRevalidateMs?: number
  /**
   * After the TTL, for this long the stale value is kept and served when the loader throws, when
   * Redis is down, or while another process holds the lease (fail-safe). 0 disables it.
   * @default 0
   */
  gracePeriodMs?: number
  /**
   * Grace back-off: when the loader fails and a stale value within the grace period is served
   * instead, that value is stored as fresh for this long (in Redis under the lease, and locally),
   * so the next reads in every process get it without calling the failing loader each time.
   * 0: no back-off (every read during the failure calls the loader).
   * @default 5_000
   */
  graceBackoffMs?: number
  /**
   * TTL of a cached "not found" (the loader returned `undefined`). 0: `undefined` is not cached.
   * @default 0
   */
  negativeTtlMs?: number
  /**
   * When a load (re)fills a key that has a stale value within `staleWhileRevalidateMs` or
   * `gracePeriodMs`, its callers get that stale value after this long, and the load goes on in the
   * background (up to `loaderHardTimeoutMs`) and writes its value when it finishes. 0: no soft
   * timeout (callers wait for the load).
   * @default 0
   */
  loaderSoftTimeoutMs?: number
  /**
   * A loader call that has not settled after this long (counted from the call, including a wait
   * for a slot of `maxConcurrentLoads`) is given up: its `signal` is aborted, its callers get the
   * stale value within the grace period or a `CacheLoaderTimeoutError`, its slot is freed and its
   * lease released. Whatever it returns later is dropped.
   * @default 10_000
   */
  loaderHardTimeoutMs?: number
}

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
  /** The user's ioredis `Redis` or `Cluster` instance (required, no default). Not closed by `close()`. */
  redis: RedisClient
  /**
   * Namespace prepended to every Redis key and to the invalidation channel. Must not contain `{` or `}`.
   * @default 'rtc:'
   */
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
   * Optional pino-compatible logger (warnings only).
   * @default undefined (silent)
   */
  logger?: CacheLogger
  /**
   * Optional metrics hook, called on every counter change (`stats()` has the same counters).
   * @default undefined
   */
  metrics?: CacheMetricsHook
}

export interface ResolvedFreshness {
  ttlMs: number
  jitter: number
  staleWhileRevalidateMs: number
  gracePeriodMs: number
  negativeTtlMs: number
  graceBackoffMs: number
  loaderSoftTimeoutMs: number
  loaderHardTimeoutMs: number
}

export interface ResolvedOptions {
  redis: RedisClient
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
  logger: CacheLogger | undefined
  metrics: CacheMetricsHook | undefined
}

function duration(name: string, value: number | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new CacheOptionsError(name, `expected a finite number >= ${min}, got ${String(value)}`)
  }
  return value
}

export function resolveFreshness(options: FreshnessOptions, base: ResolvedFreshness): ResolvedFreshness {
  const jitter = duration('jitter', options.jitter, base.jitter)
  if (jitter > 1) throw new CacheOptionsError('jitter', `expected a fraction between 0 and 1, got ${jitter}`)
  return {
    ttlMs: duration('ttlMs', options.ttlMs, base.ttlMs, 1),
    jitter,
    staleWhileRevalidateMs: duration(
      'staleWhileRevalidateMs',
      options.staleWhileRevalidateMs,
      base.staleWhileRevalidateMs,
    ),
    gracePeriodMs: duration('gracePeriodMs', options.gracePeriodMs, base.gracePeriodMs),
    negativeTtlMs: duration('negativeTtlMs', options.negativeTtlMs, base.negativeTtlMs),
    graceBackoffMs: duration('graceBackoffMs', options.graceBackoffMs, base.graceBackoffMs),
    loaderSoftTimeoutMs: duration(
      'loaderSoftTimeoutMs',
      options.loaderSoftTimeoutMs,
      base.loaderSoftTimeoutMs,
    ),
    loaderHardTimeoutMs: duration(
      'loaderHardTimeoutMs',
      options.loaderHardTimeoutMs,
      base.loaderHardTimeoutMs,
      1,
    ),
  }
}

const DEFAULT_FRESHNESS: ResolvedFreshness = {
  ttlMs: 60_000,
  jitter: 0.1,
  staleWhileRevalidateMs: 0,
  gracePeriodMs: 0,
  negativeTtlMs: 0,
  graceBackoffMs: 5_000,
  loaderSoftTimeoutMs: 0,
  loaderHardTimeoutMs: 10_000,
}

export function resolveOptions(options: ReadThroughCacheOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new CacheOptionsError('options', 'pass an options object with at least { redis }')
  }
  const redis = options.redis as unknown as { evalsha?: unknown; duplicate?: unknown } | undefined
  if (!redis || typeof redis.evalsha !== 'function' || typeof redis.duplicate !== 'function') {
    throw new CacheOptionsError('redis', 'expected an ioredis Redis or Cluster instance')
  }
  const prefix = options.prefix ?? 'rtc:'
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    throw new CacheOptionsError(
      'prefix',
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
