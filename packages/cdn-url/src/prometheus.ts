import {
  type MetricCatalog,
  type MetricsHook,
  type PromClientMetricsOptions,
  promClientHook,
} from '@scale/observability'

export type { PromClientLike, PromClientMetricsOptions } from '@scale/observability'

// The counters this package increments, with their labels and help; a name not listed here (a
// newer version's) gets the labels it first arrives with.
const CATALOG: MetricCatalog = {
  counters: {
    cdn_urls_total: { labelNames: [], help: 'Asset URLs built by cdn.url()' },
    cdn_url_fallback_total: { labelNames: [], help: 'URLs pointed at the origin because the edge was down' },
    cdn_health_probes_total: { labelNames: ['result'], help: 'Edge health probes, by result (up, down)' },
    cdn_fallback_switches_total: {
      labelNames: ['to'],
      help: 'Switches of rendered URLs between edge and origin',
    },
    cdn_verify_total: {
      labelNames: ['result'],
      help: 'Signed URL verifications, by result (ok or error code)',
    },
    cdn_origin_responses_total: {
      labelNames: ['status', 'class'],
      help: 'Origin responses, by status and asset class',
    },
    cdn_purge_requests_total: {
      labelNames: ['provider', 'kind', 'result'],
      help: 'Purge requests sent, retries included',
    },
    cdn_purge_items_total: { labelNames: ['provider', 'kind'], help: 'URLs or keys purged' },
  },
}

/**
 * A `metrics` hook that feeds prom-client counters (and histograms for `observe`), created on
 * first use and registered where you say.
 *
 * @example
 * ```ts
 * import * as promClient from 'prom-client'
 * const metrics = promClientMetrics({ promClient })
 * const cdn = createCdn({ baseUrl, manifest, metrics })
 * // GET /metrics -> scale_cdn_urls_total 1234
 * ```
 */
export function promClientMetrics<Registry>(options: PromClientMetricsOptions<Registry>): MetricsHook {
  return promClientHook(options, CATALOG)
}
