import type { MetricsHook } from './metrics.js'

/** The part of a prom-client `Counter` used here. */
export interface CounterLike {
  inc(labels: Record<string, string>, value?: number): void
}

/** The part of a prom-client `Histogram` used here. */
export interface HistogramLike {
  observe(labels: Record<string, string>, value: number): void
}

/** The part of the prom-client module `promClientMetrics` uses: pass `import * as promClient from 'prom-client'`. */
export interface PromClientCountersLike<Registry> {
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
  /** The prom-client module (an optional peer: this package never imports it). */
  promClient: PromClientCountersLike<Registry>
  /**
   * prom-client registries to register in.
   * @default [promClient.register] (prom-client's own default)
   */
  registers?: Registry[]
  /**
   * Prefix of every metric name.
   * @default 'scale_'
   */
  prefix?: string
}

// What this package reports, with labels and help; a name not listed (a newer version's) gets the
// labels it first arrives with.
const KNOWN: Record<string, { labels: string[]; help: string }> = {
  jobs_enqueued_total: { labels: ['queue', 'job'], help: 'Jobs enqueued by producers' },
  jobs_enqueue_errors_total: {
    labels: ['queue', 'job', 'code'],
    help: 'Enqueues that failed, by error code',
  },
  jobs_completed_total: { labels: ['queue', 'job'], help: 'Jobs completed' },
  jobs_retries_total: { labels: ['queue', 'job'], help: 'Failed attempts scheduled for a retry' },
  jobs_dead_lettered_total: { labels: ['queue', 'job', 'permanent'], help: 'Jobs that failed for good' },
  jobs_cancelled_total: { labels: ['queue', 'job'], help: 'Running jobs cancelled by producer.cancel' },
  jobs_returned_total: { labels: ['queue', 'job'], help: 'Jobs handed back to the queue at shutdown' },
  jobs_run_seconds: { labels: ['queue'], help: 'Handler time of finished jobs' },
  jobs_outbox_relayed_total: { labels: ['queue'], help: 'Outbox rows moved to BullMQ' },
  jobs_outbox_batch_errors_total: { labels: [], help: 'Outbox relay batches that failed (rows retried)' },
}

/**
 * A `metrics` hook that feeds prom-client counters (and histograms for `observe`), created on
 * first use and registered where you say. Give the same hook to producers, workers and relays.
 *
 * @example
 * ```ts
 * import * as promClient from 'prom-client'
 * const metrics = promClientMetrics({ promClient })
 * createWorker({ connection, jobs: [resizeImage], metrics })
 * // GET /metrics → scale_jobs_completed_total{queue="images",job="resize-image"} 1234
 * ```
 */
export function promClientMetrics<Registry>(options: PromClientMetricsOptions<Registry>): MetricsHook {
  const prefix = options.prefix ?? 'scale_'
  const registers = options.registers === undefined ? {} : { registers: options.registers }
  const counters = new Map<string, { counter: CounterLike; labels: string[] }>()
  const histograms = new Map<string, { histogram: HistogramLike; labels: string[] }>()
  const labelNames = (name: string, labels: Record<string, string> | undefined) =>
    KNOWN[name]?.labels ?? Object.keys(labels ?? {})
  const pick = (names: string[], labels: Record<string, string> | undefined) =>
    Object.fromEntries(names.map((name) => [name, labels?.[name] ?? '']))
  return {
    increment(name, labels, value = 1) {
      let entry = counters.get(name)
      if (!entry) {
        const names = labelNames(name, labels)
        const counter = new options.promClient.Counter({
          name: `${prefix}${name}`,
          help: KNOWN[name]?.help ?? name,
          labelNames: names,
          ...registers,
        })
        entry = { counter, labels: names }
        counters.set(name, entry)
      }
      entry.counter.inc(pick(entry.labels, labels), value)
    },
    observe(name, value, labels) {
      let entry = histograms.get(name)
      if (!entry) {
        const names = labelNames(name, labels)
        const histogram = new options.promClient.Histogram({
          name: `${prefix}${name}`,
          help: KNOWN[name]?.help ?? name,
          labelNames: names,
          ...registers,
        })
        entry = { histogram, labels: names }
        histograms.set(name, entry)
      }
      entry.histogram.observe(pick(entry.labels, labels), value)
    },
  }
}
