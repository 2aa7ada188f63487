import type { MetricLabels, MetricsHook } from './observability.js'

/** What prom-client's `Counter` and `Histogram` constructors take (the part used here). */
export interface PromMetricConfiguration<Registry> {
  name: string
  help: string
  labelNames: string[]
  registers?: Registry[]
  buckets?: number[]
}

/** The part of a prom-client `Counter` used here. */
export interface CounterLike {
  inc(labels: MetricLabels, value?: number): void
}

/** The part of a prom-client `Histogram` used here. */
export interface HistogramLike {
  observe(labels: MetricLabels, value: number): void
}

/** The part of the prom-client module used here: pass `import * as promClient from 'prom-client'`. */
export interface PromClientLike<Registry> {
  Counter: new (configuration: PromMetricConfiguration<Registry>) => CounterLike
  /** Left out by a package that declares no histogram: its observations are then dropped. */
  Histogram?: new (
    configuration: PromMetricConfiguration<Registry>,
  ) => HistogramLike
}

/** What a user gives a package's prom-client adapter. */
export interface PromClientMetricsOptions<Registry> {
  /** The prom-client module (an optional peer: @scale packages never import it). */
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

/** One metric a package reports. */
export interface MetricDeclaration {
  help: string
  /** @default the label names of the first sample */
  labelNames?: string[]
  /** histogram buckets; @default the catalog's `buckets` */
  buckets?: number[]
}

/** The metrics a package reports: what its adapter knows of them. */
export interface MetricCatalog {
  counters?: Record<string, MetricDeclaration>
  histograms?: Record<string, MetricDeclaration>
  /** @default prom-client's own default buckets */
  buckets?: number[]
  /**
   * Create every declared metric at once, so /metrics lists them from the start at zero, and
   * ignore names not declared. Otherwise each metric is created on first use, an undeclared one
   * (a newer version's) with the labels it first arrives with.
   * @default false
   */
  declaredOnly?: boolean
}

type Metric<T> = { metric: T; labelNames: string[] }

/**
 * A `metrics` hook that feeds prom-client counters (`increment`) and histograms (`observe`),
 * registered where the user says. Each sample carries exactly the metric's label names: missing
 * ones are `''`, extra ones dropped (prom-client throws on those).
 */
export function promClientHook<Registry>(
  options: PromClientMetricsOptions<Registry>,
  catalog: MetricCatalog = {},
): MetricsHook {
  const { promClient } = options
  const prefix = options.prefix ?? 'scale_'
  const registers = options.registers === undefined ? {} : { registers: options.registers }
  const configuration = (
    name: string,
    declared: MetricDeclaration | undefined,
    labels: MetricLabels | undefined,
    histogram: boolean,
  ): PromMetricConfiguration<Registry> => {
    const buckets = histogram ? (declared?.buckets ?? catalog.buckets) : undefined
    return {
      name: prefix + name,
      help: declared?.help ?? name,
      labelNames: declared?.labelNames ?? Object.keys(labels ?? {}),
      ...(buckets === undefined ? {} : { buckets }),
      ...registers,
    }
  }
  const counters = new Map<string, Metric<CounterLike>>()
  const histograms = new Map<string, Metric<HistogramLike>>()
  const counter = (name: string, labels?: MetricLabels) => {
    const declared = catalog.counters?.[name]
    if (!declared && catalog.declaredOnly) return undefined
    const config = configuration(name, declared, labels, false)
    const entry = { metric: new promClient.Counter(config), labelNames: config.labelNames }
    counters.set(name, entry)
    return entry
  }
  const histogram = (name: string, labels?: MetricLabels) => {
    const declared = catalog.histograms?.[name]
    if ((!declared && catalog.declaredOnly) || promClient.Histogram === undefined) return undefined
    const config = configuration(name, declared, labels, true)
    const entry = { metric: new promClient.Histogram(config), labelNames: config.labelNames }
    histograms.set(name, entry)
    return entry
  }
  if (catalog.declaredOnly) {
    for (const name of Object.keys(catalog.counters ?? {})) counter(name)
    for (const name of Object.keys(catalog.histograms ?? {})) histogram(name)
  }
  return {
    increment(name, labels, value = 1) {
      const entry = counters.get(name) ?? counter(name, labels)
      entry?.metric.inc(pick(entry.labelNames, labels), value)
    },
    observe(name, value, labels) {
      const entry = histograms.get(name) ?? histogram(name, labels)
      entry?.metric.observe(pick(entry.labelNames, labels), value)
    },
  }
}

function pick(names: string[], labels: MetricLabels | undefined): MetricLabels {
  const picked: MetricLabels = {}
  for (const name of names) picked[name] = labels?.[name] ?? ''
  return picked
}
