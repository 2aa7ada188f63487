import type { MetricsHook } from './observability.js'

type Labels = Record<string, string>

/** What prom-client's `Counter` and `Histogram` constructors take (the part used here). */
export interface PromMetricConfiguration<Registry> {
  name: string
  help: string
  labelNames: string[]
  registers?: Registry[]
  buckets?: number[]
}

/** The part of the prom-client module used: pass `import * as promClient from 'prom-client'`. */
export interface PromClientModule<Registry> {
  Counter: new (
    configuration: PromMetricConfiguration<Registry>,
  ) => { inc(labels: Labels, value?: number): void }
  Histogram: new (
    configuration: PromMetricConfiguration<Registry>,
  ) => { observe(labels: Labels, value: number): void }
}

export interface PromClientMetricsOptions<Registry> {
  /** The prom-client module (an optional peer: this package never imports it). */
  promClient: PromClientModule<Registry>
  /**
   * Registries to register the metrics in.
   * @default [promClient.register] (prom-client's own default)
   */
  registers?: Registry[]
  /**
   * Prefix of every metric name.
   * @default 'scale_'
   */
  prefix?: string
}

// Every metric the router reports (see MetricsHook), created up front so /metrics lists them
// from the start, at zero.
const COUNTERS: Record<string, { help: string; labelNames: string[] }> = {
  replica_queries_total: {
    help: 'Queries routed, by node, role, routing reason and result',
    labelNames: ['node', 'role', 'reason', 'result'],
  },
  replica_read_retries_total: { help: 'Reads retried on another node after theirs failed', labelNames: [] },
  replica_ryw_waits_total: {
    help: "Reads that waited for a replica to replay their context's position, by who served them",
    labelNames: ['result'],
  },
  replica_ryw_waits_skipped_total: {
    help: 'Reads sent to the primary at once, a read-your-writes wait known to be futile',
    labelNames: [],
  },
  replica_health_changes_total: {
    help: 'Replica exclusions and rejoins',
    labelNames: ['node', 'event', 'reason'],
  },
  replica_primary_changes_total: { help: 'Switches to another primary host', labelNames: [] },
}
const HISTOGRAMS: Record<string, { help: string; labelNames: string[] }> = {
  replica_query_duration_ms: { help: 'Query duration in milliseconds, by role', labelNames: ['role'] },
  replica_ryw_wait_ms: { help: 'Read-your-writes wait in milliseconds', labelNames: [] },
}
const MILLISECOND_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000]

/**
 * A `metrics` hook that feeds prom-client counters and histograms (milliseconds), registered once
 * when called: create it once per registry.
 *
 * @example
 * ```ts
 * import * as promClient from 'prom-client'
 * const db = createReplicatedKysely<Database>({ primary, replicas, metrics: promClientMetrics({ promClient }) })
 * // GET /metrics -> scale_replica_queries_total{node="replica-1",role="replica",reason="read",result="ok"} 42
 * ```
 */
export function promClientMetrics<Registry>(options: PromClientMetricsOptions<Registry>): MetricsHook {
  const { promClient } = options
  const prefix = options.prefix ?? 'scale_'
  const where = options.registers === undefined ? {} : { registers: options.registers }
  const counters = new Map(
    Object.entries(COUNTERS).map(([name, metric]) => [
      name,
      new promClient.Counter({ name: prefix + name, ...metric, ...where }),
    ]),
  )
  const histograms = new Map(
    Object.entries(HISTOGRAMS).map(([name, metric]) => [
      name,
      new promClient.Histogram({ name: prefix + name, ...metric, buckets: MILLISECOND_BUCKETS, ...where }),
    ]),
  )
  return {
    increment: (name, labels, value) => counters.get(name)?.inc(labels ?? {}, value),
    observe: (name, value, labels) => histograms.get(name)?.observe(labels ?? {}, value),
  }
}
