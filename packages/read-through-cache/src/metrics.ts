import { type Logger, type MetricCatalog, type MetricsHook, promClientHook } from '@scale/observability'
import type { CircuitState } from './circuit-breaker.js'

/**
 * The pino-compatible logger and the metrics hook shared by @scale packages (CONTRIBUTING.md):
 * `pino()` (or a child of it) passes as is. The cache only ever warns; every message starts
 * `[@scale/read-through-cache]`. A metrics hook (Prometheus, StatsD, OpenTelemetry...) has both
 * methods optional, called synchronously (keep them cheap); a hook that throws never breaks a call:
 * the error is caught and logged once. `promClientMetrics` is one for prom-client. Names reported
 * (labels in braces): see {@link CACHE_METRICS}; and `read_through_cache_circuit_transitions_total`
 * {state} on every circuit transition.
 */
export type { Logger, MetricsHook } from '@scale/observability'

/** @deprecated Use `Logger` (the shape every @scale package takes). Removed in the next minor. */
export type CacheLogger = Logger

/** Names of the counters in `stats()`. */
export type CacheCounter =
  | 'hitsLocal'
  | 'hitsRedis'
  | 'misses'
  | 'loads'
  | 'loadErrors'
  | 'coalescedWaits'
  | 'joinsRetried'
  | 'staleServed'
  | 'staleSetsPrevented'
  | 'redisErrors'
  | 'invalidationsQueued'

/**
 * @deprecated The 0.x hook shape, `increment(counter, by)` with a `stats()` counter name, plus an
 * optional `circuitState(state)`. Still called as before for one minor when the hook has a
 * `circuitState` method (a 0.x hook without one: add `circuitState() {}`); use `MetricsHook`.
 */
export interface CacheMetricsHook {
  increment(counter: CacheCounter, by: number): void
  circuitState?(state: CircuitState): void
}

/** @internal the counter each circuit transition adds to, labelled {state}. */
export const CIRCUIT_TRANSITIONS = 'read_through_cache_circuit_transitions_total'

/** The metric (and labels) each `stats()` counter is reported as on a `MetricsHook`. */
export const CACHE_METRICS: Readonly<
  Record<CacheCounter, { name: string; labels?: Record<string, string>; help: string }>
> = {
  hitsLocal: {
    name: 'read_through_cache_hits_total',
    labels: { tier: 'local' },
    help: 'Fresh values served',
  },
  hitsRedis: {
    name: 'read_through_cache_hits_total',
    labels: { tier: 'redis' },
    help: 'Fresh values served',
  },
  misses: { name: 'read_through_cache_misses_total', help: 'Reads that found no fresh value' },
  loads: { name: 'read_through_cache_loads_total', help: 'Loader calls' },
  loadErrors: { name: 'read_through_cache_load_errors_total', help: 'Loader calls that failed' },
  coalescedWaits: {
    name: 'read_through_cache_coalesced_waits_total',
    help: 'Callers that joined a load already running',
  },
  joinsRetried: {
    name: 'read_through_cache_joins_retried_total',
    help: 'Joined callers that read again: a write of another process voided the load they joined',
  },
  staleServed: { name: 'read_through_cache_stale_served_total', help: 'Stale values served (SWR, grace)' },
  staleSetsPrevented: {
    name: 'read_through_cache_stale_sets_prevented_total',
    help: 'Loads whose write an invalidation voided',
  },
  redisErrors: {
    name: 'read_through_cache_redis_errors_total',
    help: 'Redis commands that failed or timed out',
  },
  invalidationsQueued: {
    name: 'read_through_cache_invalidations_queued_total',
    help: 'Invalidations queued for replay while Redis was unreachable',
  },
}

/**
 * Whether `hook` has the deprecated 0.x shape (see `CacheMetricsHook`), told by its `circuitState`
 * method: the new shape has none, and the parameter count of `increment` cannot tell the two apart
 * (`increment(name, labels?, value = 1)` declares two as well).
 */
export function isLegacyHook(hook: MetricsHook | CacheMetricsHook): hook is CacheMetricsHook {
  return typeof (hook as CacheMetricsHook).circuitState === 'function'
}

/** The part of a prom-client `Counter` used here. */
interface PromCounter {
  inc(labels: Record<string, string>, value?: number): void
}

export interface PromClientMetricsOptions<Registry> {
  /** The prom-client module (`import * as promClient from 'prom-client'`); this package never imports it. */
  promClient: {
    Counter: new (configuration: {
      name: string
      help: string
      labelNames: string[]
      registers?: Registry[]
    }) => PromCounter
  }
  /**
   * prom-client registries to register in.
   * @default [promClient.register]
   */
  registers?: Registry[]
  /**
   * Prefix of every metric name.
   * @default 'scale_'
   */
  prefix?: string
}

/**
 * A `metrics` hook that feeds prom-client counters, one per metric name, created on first use
 * (the shared prom-client adapter of `@scale/observability`, with this package's catalog).
 *
 * @example
 * ```ts
 * import * as promClient from 'prom-client'
 * const cache = createReadThroughCache({ redis, metrics: promClientMetrics({ promClient }) })
 * // GET /metrics → scale_read_through_cache_hits_total{tier="local"} 1234
 * ```
 */
export function promClientMetrics<Registry>(options: PromClientMetricsOptions<Registry>): MetricsHook {
  const promClient = { Counter: options.promClient.Counter }
  const hook = promClientHook({ ...options, promClient }, CATALOG)
  // Counters only, as before: the cache observes nothing.
  return { ...(hook.increment === undefined ? {} : { increment: hook.increment }) }
}

// What this package reports, with help and labels; each counter is created on first use.
const CATALOG: MetricCatalog = {
  counters: {
    ...Object.fromEntries(
      Object.values(CACHE_METRICS).map((metric) => [
        metric.name,
        { help: metric.help, labelNames: Object.keys(metric.labels ?? {}) },
      ]),
    ),
    [CIRCUIT_TRANSITIONS]: { help: 'Circuit breaker transitions, by new state', labelNames: ['state'] },
  },
}

/**
 * @internal A 0.x hook (see `CacheMetricsHook`) as a `MetricsHook`: it gets the `stats()` counter
 * names (which the cache passes it as metric names) and `circuitState` for a circuit transition.
 */
export function legacyHookAdapter(hook: CacheMetricsHook): MetricsHook {
  return {
    increment(name, labels, value = 1) {
      if (name === CIRCUIT_TRANSITIONS) hook.circuitState?.(labels?.state as CircuitState)
      else hook.increment(name as CacheCounter, value)
    },
  }
}
