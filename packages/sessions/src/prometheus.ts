import { type MetricCatalog, promClientHook } from '@scale/observability'
import type { MetricsHook, SessionsMetric } from './observability.js'

type Labels = Record<string, string>

/** What prom-client's `Counter` and `Gauge` constructors take (the part used here). */
export interface PromMetricConfiguration<Registry> {
  name: string
  help: string
  labelNames: string[]
  registers?: Registry[]
}

/** The part of the prom-client module used: pass `import * as promClient from 'prom-client'`. */
export interface PromClientModule<Registry> {
  Counter: new (
    configuration: PromMetricConfiguration<Registry>,
  ) => { inc(labels: Labels, value?: number): void }
  Gauge: new (
    configuration: PromMetricConfiguration<Registry>,
  ) => { set(labels: Labels, value: number): void }
}

export interface PromClientMetricsOptions<Registry> {
  /** The prom-client module (an optional peer: this package never imports it). */
  promClient: PromClientModule<Registry>
  /** Registries to register the metrics in. @default [promClient.register] (prom-client's own default) */
  registers?: Registry[]
  /** Prefix of every metric name. @default 'scale_' */
  prefix?: string
}

type CounterName = Exclude<SessionsMetric, 'sessions_circuit_open'>

// Every counter the package reports (see SessionsMetric), created up front (`declaredOnly`) so
// /metrics lists them from the start, at zero.
const CATALOG: MetricCatalog & { counters: Record<CounterName, { help: string; labelNames: string[] }> } = {
  declaredOnly: true,
  counters: {
    sessions_loads_total: {
      help: "Requests' sessions: read from Redis (found), started fresh (new), or Redis down (unavailable)",
      labelNames: ['result'],
    },
    sessions_saves_total: { help: 'Session writes at commit or save, by kind', labelNames: ['kind'] },
    sessions_rotations_total: { help: 'Logged-in sessions moved to a new ID', labelNames: [] },
    sessions_revocations_total: {
      help: 'Sessions ended by destroyUserSession (one) or destroyAllUserSessions (all)',
      labelNames: ['scope'],
    },
    sessions_circuit_transitions_total: {
      help: 'Redis circuit breaker openings and closings',
      labelNames: ['state'],
    },
    sessions_errors_total: {
      help: 'Errors thrown to the app or reported to onError, by code',
      labelNames: ['code'],
    },
  },
}

/**
 * A `metrics` hook that feeds prom-client counters (the shared adapter of
 * `@scale/observability`), and a gauge for the breaker state (`sessions_circuit_open`, 1 while
 * open), registered once when called: create it once per registry.
 *
 * @example
 * ```ts
 * import * as promClient from 'prom-client'
 * const sessions = createSessions({ redis, secrets, metrics: promClientMetrics({ promClient }) })
 * // GET /metrics -> scale_sessions_loads_total{result="found"} 42
 * ```
 */
export function promClientMetrics<Registry>(options: PromClientMetricsOptions<Registry>): MetricsHook {
  const { promClient } = options
  const prefix = options.prefix ?? 'scale_'
  const where = options.registers === undefined ? {} : { registers: options.registers }
  const counters = promClientHook({ promClient: { Counter: promClient.Counter }, prefix, ...where }, CATALOG)
  const circuitOpen = new promClient.Gauge({
    name: `${prefix}sessions_circuit_open`,
    help: 'Whether the Redis circuit breaker is open (1) or closed (0)',
    labelNames: [],
    ...where,
  })
  return {
    increment: (name, labels, value) => counters.increment?.(name, labels, value),
    observe: (name, value) => {
      if (name === 'sessions_circuit_open') circuitOpen.set({}, value)
    },
  }
}
