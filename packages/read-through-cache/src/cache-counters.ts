import { Observability } from '@scale/observability'
import { CacheEvents } from './cache-events.js'
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

const LOCAL = { tier: 'local' } as const
const REDIS = { tier: 'redis' } as const

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
    joinsRetried: 0,
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
    let warned = false
    this.events = new CacheEvents((error) => {
      if (warned) return
      warned = true
      logger?.warn({ err: error }, '[@scale/read-through-cache] an event listener threw (logged once)')
    })
  }

  /** A hit of `key` in `tier`: counted and emitted. */
  hit(key: string, tier: 'local' | 'redis'): void {
    this.count(tier === 'local' ? 'hitsLocal' : 'hitsRedis')
    // Tested here too: a local hit is a few hundred nanoseconds, so even a call shows.
    if (this.events.listening) this.events.emit('hit', key, tier === 'local' ? LOCAL : REDIS)
  }

  /** A miss of `key` (nothing fresh here or in Redis): counted and emitted. */
  miss(key: string): void {
    this.count('misses')
    this.events.emit('miss', key)
  }

  /** `callers` callers of `key` got a stale value: counted and emitted. */
  stale(key: string, callers = 1): void {
    this.count('staleServed', callers)
    this.events.emit('stale', key, { callers })
  }

  /** The loader of `key` failed: counted and emitted. */
  loadError(key: string, error: unknown): void {
    this.count('loadErrors')
    this.events.emit('error', key, { error })
  }

  /** Per-key events (`cache.on`); the counters that are per key emit through `hit`, `miss`... */
  readonly events: CacheEvents

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
