import type { MetricsHook } from './observability.js'

/** The part of a prom-client `Counter` used here. */
export interface CounterLike {
  inc(labels: Record<string, string>, value: number): void
}

/** The part of a prom-client `Histogram` used here. */
export interface HistogramLike {
  observe(labels: Record<string, string>, value: number): void
}

/** The part of the prom-client module used here: pass `import * as promClient from 'prom-client'`. */
export interface PromClientLike<Registry> {
  Counter: new (configuration: {
    name: string
    help: string
    labelNames: string[]
    registers?: Registry[]
  }) => CounterLike
  Histogram: new (configuration: {
    name: string
    help: string
    labelNames: string[]
    buckets?: number[]
    registers?: Registry[]
  }) => HistogramLike
}

/** Options of {@link prometheusMetrics}. */
export interface PrometheusMetricsOptions<Registry> {
  /** The prom-client module (this package never imports it). */
  promClient: PromClientLike<Registry>
  /**
   * Registries to register in.
   * @default [promClient.register] (prom-client's own default)
   */
  registers?: Registry[]
  /**
   * Prefix of every metric name.
   * @default 'scale_'
   */
  prefix?: string
}

const HELP: Record<string, string> = {
  sharding_route_total: 'Queries routed to a shard by key',
  sharding_fenced_retries_total: 'Writes refused by a shard that handed its bucket over, routed again',
  sharding_map_epoch_changes_total: 'New shard map epochs adopted',
  sharding_move_rows_copied_total: 'Rows copied by bucket moves',
  sharding_scatter_ms: 'Scatter-gather query time (ms)',
  sharding_move_pause_ms: 'Write pause of a bucket cut-over (ms)',
}

const MS_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]

/**
 * A `metrics` hook that feeds prom-client: counters for `*_total`, histograms (ms buckets) for
 * the rest, created on first use with that call's label names.
 *
 * @example
 * ```ts
 * import * as promClient from 'prom-client'
 * const db = await createShardedKysely({ shards, map, metrics: prometheusMetrics({ promClient }) })
 * // GET /metrics → scale_sharding_route_total{shard="s1"} 42
 * ```
 */
export function prometheusMetrics<Registry>(options: PrometheusMetricsOptions<Registry>): MetricsHook {
  const prefix = options.prefix ?? 'scale_'
  const registers = options.registers !== undefined ? { registers: options.registers } : {}
  const counters = new Map<string, CounterLike>()
  const histograms = new Map<string, HistogramLike>()
  return {
    increment(name, labels = {}, value = 1) {
      let counter = counters.get(name)
      if (!counter) {
        counter = new options.promClient.Counter({
          name: `${prefix}${name}`,
          help: HELP[name] ?? name,
          labelNames: Object.keys(labels),
          ...registers,
        })
        counters.set(name, counter)
      }
      counter.inc(labels, value)
    },
    observe(name, value, labels = {}) {
      let histogram = histograms.get(name)
      if (!histogram) {
        histogram = new options.promClient.Histogram({
          name: `${prefix}${name}`,
          help: HELP[name] ?? name,
          labelNames: Object.keys(labels),
          buckets: MS_BUCKETS,
          ...registers,
        })
        histograms.set(name, histogram)
      }
      histogram.observe(labels, value)
    },
  }
}
