import { CacheOptionsError } from './errors.js'

/** The freshness options shared by the cache and each call (`EntryOptions`), and their validation. */

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

/** A number option: finite and at least `min`, or a typed error naming it. */
export function duration(name: string, value: number | undefined, fallback: number, min = 0): number {
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

export const DEFAULT_FRESHNESS: ResolvedFreshness = {
  ttlMs: 60_000,
  jitter: 0.1,
  staleWhileRevalidateMs: 0,
  gracePeriodMs: 0,
  negativeTtlMs: 0,
  graceBackoffMs: 5_000,
  loaderSoftTimeoutMs: 0,
  loaderHardTimeoutMs: 10_000,
}
