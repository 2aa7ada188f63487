import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

/** What each web process exposes on GET /metrics (Prometheus text format). */
export interface AppMetrics {
  registry: Registry
  requests: Counter<'method' | 'route' | 'status'>
  duration: Histogram<'route'>
}

export function createAppMetrics(
  name: string,
  sources: { dbQueries(): Record<string, number>; cache(): Record<string, unknown> | undefined },
): AppMetrics {
  const registry = new Registry()
  registry.setDefaultLabels({ server: name })
  collectDefaultMetrics({ register: registry })
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  })
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request to response, by route',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  new Gauge({
    name: 'db_queries_total',
    help: 'Queries sent to each database node (from the read-replica router)',
    labelNames: ['node'] as const,
    registers: [registry],
    collect() {
      for (const [node, count] of Object.entries(sources.dbQueries())) this.set({ node }, count)
    },
  })
  new Gauge({
    name: 'cache_events_total',
    help: 'Read-through cache counters (hits, misses, loads, ...)',
    labelNames: ['event'] as const,
    registers: [registry],
    collect() {
      for (const [event, count] of Object.entries(sources.cache() ?? {})) {
        if (typeof count === 'number') this.set({ event }, count) // skips the circuit's state name
      }
    },
  })
  return { registry, requests, duration }
}
