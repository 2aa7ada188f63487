import autocannon from 'autocannon'
import type { Mix } from './mixes.js'
import { Timeline, type TimelineBucket } from './timeline.js'

export interface LoadOptions {
  /** Base URL the load goes to (edge, load balancer or web server). */
  url: string
  durationMs: number
  /** Concurrent connections, each a virtual user repeating the mix's visit. */
  connections: number
  mix: Mix
  /** Called about 4 times a second with the requests answered so far. */
  onProgress?: (requests: number, elapsedMs: number) => void
  /** Called once, `atMs` after the start (the drill: kill something mid-load). */
  at?: { atMs: number; run: () => Promise<void> }[]
  /** Ends the load early (before `durationMs`) once this settles: a phase as long as a reshard. */
  stopWhen?: Promise<unknown>
}

export interface LoadResult {
  mix: string
  durationMs: number
  requests: number
  /** Answered requests per second. */
  throughputRps: number
  latencyMs: { p50: number; p90: number; p99: number; mean: number; max: number }
  /** Connection errors and timeouts (no answer). */
  connectionErrors: number
  /** 5xx answers. */
  serverErrors: number
  /** Any non-2xx answer (includes 5xx). */
  non2xx: number
  /** The first few 5xx answers (status and the start of the body): who failed, and how. */
  failureSamples: string[]
  /** Answers per HTTP status. */
  statuses: Record<string, number>
  /** Per 250 ms: answered, failed (5xx or no answer), mean latency. */
  timeline: TimelineBucket[]
  /** Times (ms since the start) of every failed request, for recovery times. */
  failureTimes: number[]
  /** What the mix counted (stale reads, logged-out users, edge hits, …). */
  counts: Record<string, number>
}

/** Drives `mix` at `url` with autocannon for `durationMs`, running the scheduled drill steps. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const start = Date.now()
  const timeline = new Timeline(start)
  let answered = 0
  let serverErrors = 0
  const statuses: Record<string, number> = {}
  const failureSamples: string[] = []
  // Each request's own check runs as before; 5xx bodies are sampled on the way.
  const requests = options.mix.requests.map((request) => ({
    ...request,
    onResponse(status: number, body: string, context: object, headers?: Record<string, unknown>) {
      if (status >= 500 && failureSamples.length < 3) failureSamples.push(`${status} ${body.slice(0, 160)}`)
      if (typeof request.onResponse === 'function')
        request.onResponse(status, body, context, headers as never)
    },
  }))
  let instance!: autocannon.Instance
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        duration: options.durationMs / 1000,
        timeout: 10,
        requests,
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    )
  })
  instance.on('response', (_client, status, _bytes, latencyMs) => {
    answered++
    statuses[status] = (statuses[status] ?? 0) + 1
    if (status >= 500) {
      serverErrors++
      timeline.failed()
    } else {
      timeline.ok(latencyMs)
    }
  })
  instance.on('reqError', () => timeline.failed())
  void options.stopWhen?.finally(() => instance.stop()).catch(() => {})
  const progress = setInterval(() => options.onProgress?.(answered, Date.now() - start), 250)
  const drills = (options.at ?? []).map(
    (step) =>
      new Promise<void>((resolve, reject) => {
        setTimeout(() => step.run().then(resolve, reject), step.atMs)
      }),
  )
  try {
    const result = await finished
    await Promise.all(drills)
    const durationMs = Date.now() - start
    return {
      mix: options.mix.name,
      durationMs,
      requests: answered,
      throughputRps: Math.round(answered / (durationMs / 1000)),
      latencyMs: {
        p50: result.latency.p50,
        p90: result.latency.p90,
        p99: result.latency.p99,
        mean: Math.round(result.latency.average * 100) / 100,
        max: result.latency.max,
      },
      connectionErrors: result.errors,
      serverErrors,
      non2xx: result.non2xx,
      statuses,
      failureSamples,
      timeline: timeline.buckets(),
      failureTimes: timeline.failures,
      counts: options.mix.counts(),
    }
  } finally {
    clearInterval(progress)
  }
}
