import { createScalingSignal, type ScalingSignalReader } from '@scale/jobs'
import { Redis } from 'ioredis'
import { PHOTO_QUEUE } from '../app/photo-job.js'
import type { Topology } from '../topology/topology.js'
import { parsePrometheusText, type Sample, sumOf } from './prometheus-text.js'

/** What the dashboard shows at one moment, from the scraped /metrics of every process. */
export interface LiveFigures {
  /** ms since the collector started */
  t: number
  /** Processes whose /metrics answered this round (web servers and workers). */
  scraped: number
  requestsPerSecond: number
  errorsPerSecond: number
  meanLatencyMs: number
  cacheHitRatio: number | null
  edgeHitRatio: number | null
  queueDepth: number
  workers: number
  thumbnailsPerSecond: number
  loggedInUsers: number
  /** Host: resident memory of all scraped processes, MiB. */
  residentMiB: number
}

interface Totals {
  at: number
  requests: number
  errors: number
  durationSum: number
  durationCount: number
  cacheHits: number
  cacheMisses: number
  edgeHits: number
  edgeMisses: number
  thumbnails: number
}

async function scrape(url: string): Promise<Sample[] | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) })
    return response.ok ? parsePrometheusText(await response.text()) : undefined
  } catch {
    return undefined
  }
}

/** Scrapes every process's `/metrics` (plus the edge's counters, the queue and Redis) every `intervalMs`. */
export class LiveMetrics {
  readonly history: LiveFigures[] = []
  readonly #topology: Topology
  readonly #redis: Redis
  readonly #signal: ScalingSignalReader
  readonly #start = Date.now()
  #last: Totals | undefined
  #timer: NodeJS.Timeout | undefined
  #busy = false
  #edge = { hits: 0, misses: 0 }
  #edgeReader: Promise<void> | undefined
  #stopped = false

  constructor(topology: Topology) {
    this.#topology = topology
    this.#redis = new Redis(topology.redis?.url ?? '', { maxRetriesPerRequest: 1 })
    this.#signal = createScalingSignal({ connection: this.#redis, queue: PHOTO_QUEUE })
  }

  get latest(): LiveFigures | undefined {
    return this.history.at(-1)
  }

  start(intervalMs = 1_000): void {
    // Varnish's counters take up to ~2 s to read under load (they settle first): read them in a
    // loop of their own so a slow read never holds up the scrape of the processes.
    this.#edgeReader = (async () => {
      while (!this.#stopped && this.#topology.edge) {
        const counters = await this.#topology.edge.counters().catch(() => undefined)
        if (counters) this.#edge = { hits: counters.hits, misses: counters.misses }
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
    })()
    this.#timer = setInterval(() => {
      if (this.#busy) return
      this.#busy = true
      this.#round()
        .catch(() => {})
        .finally(() => {
          this.#busy = false
        })
    }, intervalMs)
  }

  /** Sessions in Redis (@scale/sessions keeps one hash per session under `sess:`). */
  async #loggedInUsers(): Promise<number> {
    let cursor = '0'
    const users = new Set<string>()
    do {
      const [next, keys] = await this.#redis.scan(cursor, 'MATCH', 'sess:*:u:*', 'COUNT', 1000)
      cursor = next
      for (const key of keys) users.add(key)
    } while (cursor !== '0')
    return users.size
  }

  async #round(): Promise<void> {
    const web = this.#topology.web.filter((w) => w.running)
    const workers = this.#topology.workers.filter((w) => w.running)
    const scraped = await Promise.all([
      ...web.map((w) => scrape(`${w.url}/metrics`)),
      ...workers.map((w) => scrape(w.metricsUrl)),
    ])
    const all = scraped.flatMap((s) => s ?? [])
    const edge = this.#edge
    const signal = await this.#signal.read().catch(() => undefined)
    const totals: Totals = {
      at: Date.now(),
      requests: sumOf(all, 'http_requests_total'),
      errors: sumOf(all, 'http_requests_total', (l) => Number(l.status) >= 500),
      durationSum: sumOf(all, 'http_request_duration_seconds_sum'),
      durationCount: sumOf(all, 'http_request_duration_seconds_count'),
      cacheHits: sumOf(all, 'cache_events_total', (l) => l.event === 'hitsRedis' || l.event === 'hitsLocal'),
      cacheMisses: sumOf(all, 'cache_events_total', (l) => l.event === 'misses'),
      edgeHits: edge.hits,
      edgeMisses: edge.misses,
      thumbnails: sumOf(all, 'photo_jobs_processed_total'),
    }
    const last = this.#last
    this.#last = totals
    if (!last) return
    const seconds = Math.max(0.001, (totals.at - last.at) / 1000)
    // Counters of a process that went away drop out of the sum: never report a negative rate.
    const rate = (a: number, b: number) => Math.max(0, Math.round((a - b) / seconds))
    const share = (hits: number, misses: number) =>
      hits + misses > 0 ? Math.round((hits / (hits + misses)) * 1000) / 1000 : null
    const count = totals.durationCount - last.durationCount
    this.history.push({
      t: totals.at - this.#start,
      scraped: scraped.filter(Boolean).length,
      requestsPerSecond: rate(totals.requests, last.requests),
      errorsPerSecond: rate(totals.errors, last.errors),
      meanLatencyMs:
        count > 0 ? Math.round(((totals.durationSum - last.durationSum) / count) * 10_000) / 10 : 0,
      cacheHitRatio: share(totals.cacheHits - last.cacheHits, totals.cacheMisses - last.cacheMisses),
      edgeHitRatio: share(totals.edgeHits - last.edgeHits, totals.edgeMisses - last.edgeMisses),
      queueDepth: signal?.backlog ?? 0,
      workers: workers.length,
      thumbnailsPerSecond: rate(totals.thumbnails, last.thumbnails),
      loggedInUsers: await this.#loggedInUsers().catch(() => 0),
      residentMiB: Math.round(sumOf(all, 'process_resident_memory_bytes') / 1024 ** 2),
    })
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#stopped = true
    await this.#edgeReader
    while (this.#busy) await new Promise((resolve) => setTimeout(resolve, 50))
    await this.#signal.close().catch(() => {})
    this.#redis.disconnect()
  }
}
