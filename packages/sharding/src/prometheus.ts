import { type MetricsHook, type PromClientMetricsOptions, promClientHook } from '@scale/observability'

export type {
  CounterLike,
  HistogramLike,
  PromClientLike,
  PromClientMetricsOptions,
} from '@scale/observability'

const help = (text: string) => ({ help: text })

/**
 * A `metrics` hook that feeds prom-client: counters for `increment`, histograms (ms buckets) for
 * `observe`, created on first use with that call's label names.
 *
 * @example
 * ```ts
 * import * as promClient from 'prom-client'
 * const db = await createShardedKysely({ shards, map, metrics: promClientMetrics({ promClient }) })
 * // GET /metrics → scale_sharding_route_total{shard="s1"} 42
 * ```
 */
export function promClientMetrics<Registry>(options: PromClientMetricsOptions<Registry>): MetricsHook {
  return promClientHook(options, {
    counters: {
      sharding_route_total: help('Queries routed to a shard by key'),
      sharding_fenced_retries_total: help(
        'Writes refused by a shard that handed its bucket over, routed again',
      ),
      sharding_map_epoch_changes_total: help('New shard map epochs adopted'),
      sharding_move_rows_copied_total: help('Rows copied by bucket moves'),
    },
    histograms: {
      sharding_scatter_ms: help('Scatter-gather query time (ms)'),
      sharding_move_pause_ms: help('Write pause of a bucket cut-over (ms)'),
    },
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
  })
}
