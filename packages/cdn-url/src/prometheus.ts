import type { MetricsHook } from './observability.js'

/** The part of a prom-client `Counter` used here. */
export interface CounterLike {
  inc(labels: Record<string, string>, value?: number): void
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
    registers?: Registry[]
  }) => HistogramLike
}

export interface PromClientMetricsOptions<Registry> {
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

// The counters this package increments, with their labels and help; a name not listed here (a
// newer version's) gets the labels it first arrives with.
const KNOWN: Record<string, { labels: string[]; help: string }> = {
  cdn_urls_total: { labels: [], help: 'Asset URLs built by cdn.url()' },
  cdn_url_fallback_total: { labels: [], help: 'URLs pointed at the origin because the edge was down' },
  cdn_health_probes_total: { labels: ['result'], help: 'Edge health probes, by result (up, down)' },
  cdn_fallback_switches_total: { labels: ['to'], help: 'Switches of rendered URLs between edge and origin' },
  cdn_verify_total: { labels: ['result'], help: 'Signed URL verifications, by result (ok or error code)' },
  cdn_origin_responses_total: {
    labels: ['status', 'class'],
    help: 'Origin responses, by status and asset class',
  },
  cdn_purge_requests_total: {
    labels: ['provider', 'kind', 'result'],
    help: 'Purge requests sent, retries included',
  },
  cdn_purge_items_total: { labels: ['provider', 'kind'], help: 'URLs or keys purged' },
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
  const prefix = options.prefix ?? 'scale_'
  const registers = options.registers === undefined ? {} : { registers: options.registers }
  const counters = new Map<string, { counter: CounterLike; labels: string[] }>()
  const histograms = new Map<string, { histogram: HistogramLike; labels: string[] }>()
  const pick = (names: string[], labels: Record<string, string> | undefined) =>
    Object.fromEntries(names.map((name) => [name, labels?.[name] ?? '']))
  return {
    increment(name, labels, value = 1) {
      let entry = counters.get(name)
      if (!entry) {
        const known = KNOWN[name]
        const labelNames = known?.labels ?? Object.keys(labels ?? {})
        const counter = new options.promClient.Counter({
          name: `${prefix}${name}`,
          help: known?.help ?? name,
          labelNames,
          ...registers,
        })
        entry = { counter, labels: labelNames }
        counters.set(name, entry)
      }
      entry.counter.inc(pick(entry.labels, labels), value)
    },
    observe(name, value, labels) {
      let entry = histograms.get(name)
      if (!entry) {
        const labelNames = Object.keys(labels ?? {})
        const histogram = new options.promClient.Histogram({
          name: `${prefix}${name}`,
          help: name,
          labelNames,
          ...registers,
        })
        entry = { histogram, labels: labelNames }
        histograms.set(name, entry)
      }
      entry.histogram.observe(pick(entry.labels, labels), value)
    },
  }
}
