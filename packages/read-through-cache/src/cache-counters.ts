import type { CircuitState } from './circuit-breaker.js'
import type { CacheCounter, CacheMetricsHook } from './options.js'

/** Snapshot of the counters and state, from `stats()`. */
export interface CacheStats extends Record<CacheCounter, number> {
  circuit: CircuitState
  timesCircuitOpened: number
  localEntries: number
  localBytes: number
  localEvictions: number
  /** Loader calls running now, and the most seen at once (process-wide cap: `maxConcurrentLoads`). */
  activeLoads: number
  peakConcurrentLoads: number
  /** Invalidations waiting for Redis to come back. */
  pendingInvalidations: number
}

/** The event counters of `stats()`, each increment also forwarded to the user's metrics hook. */
export class CacheCounters {
  readonly #metrics: CacheMetricsHook | undefined
  readonly #counts: Record<CacheCounter, number> = {
    hitsLocal: 0,
    hitsRedis: 0,
    misses: 0,
    loads: 0,
    loadErrors: 0,
    coalescedWaits: 0,
    staleServed: 0,
    staleSetsPrevented: 0,
    redisErrors: 0,
    invalidationsQueued: 0,
  }

  constructor(metrics: CacheMetricsHook | undefined) {
    this.#metrics = metrics
  }

  count(counter: CacheCounter): void {
    this.#counts[counter]++
    this.#metrics?.increment(counter, 1)
  }

  /** A copy, so a `stats()` snapshot does not move afterwards. */
  snapshot(): Record<CacheCounter, number> {
    return { ...this.#counts }
  }
}
