import { createScalingSignal, type ScalingSignalReader } from '@scale/jobs'
import { Redis } from 'ioredis'
import pg from 'pg'
import { PHOTO_QUEUE } from '../app/photo-job.js'
import type { Topology } from '../topology/topology.js'
import type { WorkerProcess } from '../topology/worker.js'

/** One look at the queue (stage 9's chart). */
export interface QueueSample {
  /** ms since sampling began */
  t: number
  backlog: number
  active: number
  /** Worker processes running. */
  workers: number
  suggestedWorkers: number
  /** Mean upload-to-thumbnail time of the photos processed since the last sample (null: none). */
  latencyMs: number | null
  /** Thumbnails made so far. */
  processed: number
}

export interface AutoscalerOptions {
  minWorkers: number
  maxWorkers: number
  concurrencyPerWorker: number
  targetDrainSeconds: number
  sampleMs: number
  /** Idle samples in a row before a worker is removed. */
  idleSamplesToScaleIn: number
}

/**
 * Samples the queue through @scale/jobs' scaling signal and follows its suggestion: starts a worker
 * process when it asks for more than run, stops one (SIGTERM, jobs finish or go back) once the
 * queue has stayed empty for a while.
 */
export class QueueAutoscaler {
  readonly samples: QueueSample[] = []
  readonly events: { atMs: number; what: string }[] = []
  readonly #topology: Topology
  readonly #options: AutoscalerOptions
  readonly #redis: Redis
  readonly #signal: ScalingSignalReader
  readonly #db: pg.Pool
  readonly #start = Date.now()
  #timer: NodeJS.Timeout | undefined
  #busy = false
  #scaling = false
  #idle = 0
  #lastSampleAt = new Date()

  constructor(topology: Topology, options: AutoscalerOptions) {
    this.#topology = topology
    this.#options = options
    this.#redis = new Redis(topology.redis?.url ?? '', { maxRetriesPerRequest: 1 })
    this.#signal = createScalingSignal({
      connection: this.#redis,
      queue: PHOTO_QUEUE,
      concurrencyPerWorker: options.concurrencyPerWorker,
      targetDrainSeconds: options.targetDrainSeconds,
      minWorkers: options.minWorkers,
      maxWorkers: options.maxWorkers,
    })
    this.#db = new pg.Pool({ connectionString: topology.database.primary.url, max: 2 })
    this.#db.on('error', () => {}) // an idle client of a server being stopped must not crash the runner
  }

  get running(): WorkerProcess[] {
    return this.#topology.workers.filter((w) => w.running)
  }

  note(what: string): void {
    this.events.push({ atMs: Date.now() - this.#start, what })
  }

  start(): void {
    this.#timer = setInterval(() => {
      if (this.#busy) return
      this.#busy = true
      this.#tick()
        .catch((error: unknown) => this.note(`sample failed: ${String(error)}`))
        .finally(() => {
          this.#busy = false
        })
    }, this.#options.sampleMs)
  }

  async #tick(): Promise<void> {
    const signal = await this.#signal.read()
    const since = this.#lastSampleAt
    this.#lastSampleAt = new Date()
    const { rows } = await this.#db.query<{ processed: string; recent: string; latency: number | null }>(
      `select (select count(*) from photo_thumbnails) as processed,
              count(*) as recent,
              avg(extract(epoch from t.processed_at - p.created_at) * 1000)::float8 as latency
         from photo_thumbnails t join photos p on p.id = t.photo_id
        where t.processed_at > $1`,
      [since],
    )
    const row = rows[0]
    const workers = this.running.length
    this.samples.push({
      t: Date.now() - this.#start,
      backlog: signal.backlog,
      active: signal.active,
      workers,
      suggestedWorkers: signal.suggestedWorkers,
      latencyMs: row?.latency === null || row?.latency === undefined ? null : Math.round(row.latency),
      processed: Number(row?.processed ?? 0),
    })
    this.#idle = signal.backlog + signal.active === 0 ? this.#idle + 1 : 0
    if (this.#scaling) return
    if (signal.suggestedWorkers > workers && workers < this.#options.maxWorkers) {
      this.#scaling = true
      this.note(`scale out: signal suggests ${signal.suggestedWorkers}, ${workers} running`)
      void this.#topology
        .addWorker()
        .then((w) => this.note(`${w.name} started`))
        .catch((error: unknown) => this.note(`worker start failed: ${String(error)}`))
        .finally(() => {
          this.#scaling = false
        })
    } else if (this.#idle >= this.#options.idleSamplesToScaleIn && workers > this.#options.minWorkers) {
      const victim = this.running.at(-1)
      if (!victim) return
      this.#scaling = true
      this.#idle = 0
      this.note(`scale in: queue empty, ${victim.name} stopped`)
      void victim
        .stop()
        .catch((error: unknown) => this.note(`stopping ${victim.name} failed: ${String(error)}`))
        .finally(() => {
          this.#scaling = false
        })
    }
  }

  /** Photos among `ids` that have a thumbnail. */
  async processedOf(ids: number[]): Promise<number> {
    const { rows } = await this.#db.query<{ n: string }>(
      'select count(*) as n from photo_thumbnails where photo_id = any($1::int[])',
      [ids],
    )
    return Number(rows[0]?.n ?? 0)
  }

  get elapsedMs(): number {
    return Date.now() - this.#start
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    while (this.#busy) await new Promise((resolve) => setTimeout(resolve, 50))
    await this.#signal.close().catch(() => {})
    this.#redis.disconnect()
    await this.#db.end().catch(() => {})
  }
}
