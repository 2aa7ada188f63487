import type { ReadThroughCache } from './cache-interface.js'
import type { ReadThroughCacheOptions } from './options.js'
import { CacheFacade } from './read-through-cache.js'

/**
 * Creates a read-through cache over the user's ioredis `Redis` or `Cluster`.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { createReadThroughCache } from '@scale/read-through-cache'
 *
 * const cache = createReadThroughCache({ redis: new Redis(), keyPrefix: 'app:', ttlMs: 60_000 })
 * const user = await cache.getOrLoad('user:1', () => loadUserFromDb(1))
 * await cache.delete('user:1') // after writing the row
 * await cache.close()
 * ```
 */
export function createReadThroughCache(options: ReadThroughCacheOptions): ReadThroughCache {
  return new CacheFacade(options)
}

export type { CacheStats } from './cache-counters.js'
export type { CacheEvent, CacheEventListener, CacheEventName } from './cache-events.js'
export type { MsetEntry } from './cache-writes.js'
export type { CircuitState } from './circuit-breaker.js'
export type { EntryOptions } from './entry-policy.js'
export {
  CacheBatchResultError,
  CacheClosedError,
  type CacheErrorCode,
  CacheKeyError,
  CacheLoaderFailedError,
  CacheLoaderTimeoutError,
  CacheOptionsError,
  CacheRemoteLoadError,
  CacheSerializationError,
  CacheTimeoutError,
  CacheUnavailableError,
  ReadThroughCacheError,
} from './errors.js'
export type { BatchLoader, BatchLoaderContext, Loader, LoaderContext } from './loader.js'
export {
  CACHE_METRICS,
  type CacheCounter,
  type CacheLogger,
  type CacheMetricsHook,
  type Logger,
  type MetricsHook,
  type PromClientMetricsOptions,
  promClientMetrics,
} from './metrics.js'
export type {
  FreshnessOptions,
  LocalTierOptions,
  ReadThroughCacheOptions,
} from './options.js'
export { ReadThroughCache } from './read-through-cache.js'
export type { RedisClient } from './redis-tier.js'
export { jsonSerializer, type Serializer, typedJsonSerializer } from './serializer.js'
