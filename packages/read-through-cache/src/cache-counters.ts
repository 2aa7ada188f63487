import { Observability } from '@scale/observability'
import type { CircuitState } from './circuit-breaker.js'
import {
  CACHE_METRICS,
  type CacheCounter,
  type CacheMetricsHook,
  CIRCUIT_TRANSITIONS,
  isLegacyHook,
  type Logger,
  legacyHookAdapter,
  type MetricsHook,
} from './metrics.js'

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
  /** The hook behind the shared never-throwing wrapper (a throwing hook is logged once). */
  readonly #metrics: Observability
  /** Whether the hook has the deprecated 0.x shape: it gets the `stats()` counter names. */
  readonly #legacy: boolean
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

  constructor(metrics: MetricsHook | CacheMetricsHook | undefined, logger: Logger | undefined) {
    this.#legacy = metrics !== undefined && isLegacyHook(metrics)
    const hook = this.#legacy
      ? legacyHookAdapter(metrics as CacheMetricsHook)
      : (metrics as MetricsHook | undefined)
    this.#metrics = new Observability(logger, hook, '@scale/read-through-cache')
  }

  count(counter: CacheCounter, by = 1): void {
    this.#counts[counter] += by
    if (!this.#metrics.enabled) return
    if (this.#legacy) {
      this.#metrics.increment(counter, undefined, by)
    } else {
      const metric = CACHE_METRICS[counter]
      this.#metrics.increment(metric.name, metric.labels, by)
    }
  }

  /** Reports a circuit transition (a legacy hook's `circuitState`); never throws. */
  circuitState(state: CircuitState): void {
    this.#metrics.increment(CIRCUIT_TRANSITIONS, { state }, 1)
  }

  /** A copy, so a `stats()` snapshot does not move afterwards. */
  snapshot(): Record<CacheCounter, number> {
    return { ...this.#counts }
  }
}
