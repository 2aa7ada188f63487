import type { ScalingSignal, ScalingSignalReader } from './scaling-signal.js'

/** The part of a prom-client `Gauge` used here. */
export interface GaugeLike {
  set(labels: Record<string, string>, value: number): void
  reset(): void
}

/** The part of the prom-client module used here: pass `import * as promClient from 'prom-client'`. */
export interface PromClientLike<Registry> {
  Gauge: new (configuration: {
    name: string
    help: string
    labelNames: string[]
    registers?: Registry[]
    collect?: () => Promise<void> | void
  }) => GaugeLike
}

export interface RegisterScalingMetricsOptions<Registry> {
  /** The prom-client module (an optional peer: this package never imports it). */
  promClient: PromClientLike<Registry>
  /** The signal readers to export, one per queue. */
  signals: readonly ScalingSignalReader[]
  /**
   * prom-client registries to register in.
   * @default [promClient.register] (prom-client's own default)
   */
  registers?: Registry[]
  /**
   * Metric name prefix.
   * @default 'scale_jobs_'
   */
  prefix?: string
}

const GAUGES: ReadonlyArray<[keyof ScalingSignal, string, string]> = [
  ['waiting', 'waiting', 'Jobs waiting to run'],
  ['active', 'active', 'Jobs running'],
  ['delayed', 'delayed', 'Delayed jobs (retries and delays), due or not'],
  ['delayedDue', 'delayed_due', 'Delayed jobs whose time has come'],
  ['backlog', 'backlog', 'Ready jobs: waiting plus due delayed'],
  ['oldestJobAgeSeconds', 'oldest_job_age_seconds', 'Age of the oldest ready job'],
  ['arrivalRate', 'arrival_rate', 'Jobs arriving per second'],
  ['completionRate', 'completion_rate', 'Jobs finishing per second'],
  ['jobSeconds', 'job_seconds', 'Mean handler time'],
  ['suggestedWorkers', 'suggested_workers', 'Worker processes suggested for this load'],
]

/**
 * Exports the scaling signals as Prometheus gauges labelled by `queue`, read once per scrape.
 *
 * @example
 * ```ts
 * import * as promClient from 'prom-client'
 * registerScalingMetrics({ promClient, signals: [createScalingSignal({ connection: redis, queue: 'resize-image' })] })
 * // GET /metrics → scale_jobs_suggested_workers{queue="resize-image"} 3
 * ```
 */
export function registerScalingMetrics<Registry>(options: RegisterScalingMetricsOptions<Registry>): void {
  const prefix = options.prefix ?? 'scale_jobs_'
  const gauges = new Map<keyof ScalingSignal, GaugeLike>()
  // One scrape reads each queue once, in the first gauge's collect, and every gauge uses it.
  let pending: Promise<ScalingSignal[]> | undefined
  const readAll = (): Promise<ScalingSignal[]> => {
    pending ??= Promise.all(options.signals.map((signal) => signal.read())).finally(() => {
      setImmediate(() => {
        pending = undefined
      })
    })
    return pending
  }
  for (const [field, name, help] of GAUGES) {
    const gauge: GaugeLike = new options.promClient.Gauge({
      name: `${prefix}${name}`,
      help,
      labelNames: ['queue'],
      ...(options.registers !== undefined && { registers: options.registers }),
      collect: async () => {
        const readings = await readAll()
        const target = gauges.get(field)
        if (!target) return
        target.reset()
        for (const reading of readings) target.set({ queue: reading.queue }, Number(reading[field]))
      },
    })
    gauges.set(field, gauge)
  }
}
