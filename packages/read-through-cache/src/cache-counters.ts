import type { CircuitState } from './circuit-breaker.js'
import type { CacheCounter, CacheLogger, CacheMetricsHook } from './options.js'

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

  #hookErrorLogged = false
  readonly #logger: CacheLogger | undefined

  constructor(metrics: CacheMetricsHook | undefined, logger: CacheLogger | undefined) {
    this.#metrics = metrics
    this.#logger = logger
  }

  count(counter: CacheCounter, by = 1): void {
    this.#counts[counter] += by
    if (this.#metrics === undefined) return
    try {
      this.#metrics.increment(counter, by)
    } catch (error) {
      this.#hookFailed(error)
    }
  }

  /** Forwards a circuit transition to the hook's optional `circuitState`; never throws. */
  circuitState(state: CircuitState): void {
    try {
      this.#metrics?.circuitState?.(state)
    } catch (error) {
      this.#hookFailed(error)
    }
  }

  /** A metrics hook must never break a read: its error is swallowed and logged once. */
  #hookFailed(error: unknown): void {
    if (this.#hookErrorLogged) return
    this.#hookErrorLogged = true
    this.#logger?.warn(
      { err: error },
      '[@scale/read-through-cache] the metrics hook threw; ignoring this and later errors of the hook',
    )
  }

  /** A copy, so a `stats()` snapshot does not move afterwards. */
  snapshot(): Record<CacheCounter, number> {
    return { ...this.#counts }
  }
}
