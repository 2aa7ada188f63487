import type { LoadResult } from './run-load.js'
import { Timeline } from './timeline.js'

export interface UploadBurstOptions {
  url: string
  /** Uploads started per second (open loop: a slow answer does not slow the burst). */
  ratePerSecond: number
  durationMs: number
  users: number
  /** Called once, `atMs` after the start. */
  at?: { atMs: number; run: () => Promise<void> }[]
}

export interface UploadBurstResult {
  load: LoadResult
  /** IDs of the photos the app confirmed (201): what must all end up processed. */
  accepted: number[]
}

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0)

/** Uploads at a fixed rate through `url`; every confirmed photo ID is kept for the lost-photo count. */
export async function uploadBurst(options: UploadBurstOptions): Promise<UploadBurstResult> {
  const start = Date.now()
  const timeline = new Timeline(start)
  const accepted: number[] = []
  const latencies: number[] = []
  const statuses: Record<string, number> = {}
  const failureSamples: string[] = []
  let connectionErrors = 0
  let serverErrors = 0
  let non2xx = 0
  const total = Math.round((options.ratePerSecond * options.durationMs) / 1000)
  const upload = async (n: number) => {
    const sent = Date.now()
    try {
      const response = await fetch(`${options.url}/photos`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          userId: 1 + (n % options.users),
          caption: `burst photo ${n}`,
          hue: (n * 37) % 360,
        }),
        signal: AbortSignal.timeout(10_000),
      })
      const body = await response.text()
      statuses[response.status] = (statuses[response.status] ?? 0) + 1
      if (response.status >= 500) {
        serverErrors++
        timeline.failed()
        if (failureSamples.length < 3) failureSamples.push(`${response.status} ${body.slice(0, 160)}`)
      } else timeline.ok(Date.now() - sent)
      if (response.status !== 201) {
        non2xx++
        return
      }
      latencies.push(Date.now() - sent)
      accepted.push((JSON.parse(body) as { id: number }).id)
    } catch {
      connectionErrors++
      timeline.failed()
    }
  }
  // A failed step is kept and rethrown after the burst, never left as an unhandled rejection.
  const stepErrors: unknown[] = []
  const steps = (options.at ?? []).map(
    (step) =>
      new Promise<void>((resolve) =>
        setTimeout(
          () => step.run().then(resolve, (error: unknown) => resolve(void stepErrors.push(error))),
          step.atMs,
        ),
      ),
  )
  const inFlight: Promise<void>[] = []
  for (let n = 0; n < total; n++) {
    const due = start + (n * 1000) / options.ratePerSecond
    const wait = due - Date.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    inFlight.push(upload(n))
  }
  await Promise.all(inFlight)
  await Promise.all(steps)
  if (stepErrors.length > 0) throw stepErrors[0]
  const durationMs = Date.now() - start
  const sorted = [...latencies].sort((a, b) => a - b)
  const answered = Object.values(statuses).reduce((a, b) => a + b, 0)
  return {
    accepted,
    load: {
      mix: 'photo uploads',
      durationMs,
      requests: answered,
      throughputRps: Math.round(answered / (durationMs / 1000)),
      latencyMs: {
        p50: percentile(sorted, 0.5),
        p90: percentile(sorted, 0.9),
        p99: percentile(sorted, 0.99),
        mean: sorted.length ? Math.round((sorted.reduce((a, b) => a + b, 0) / sorted.length) * 100) / 100 : 0,
        max: sorted.at(-1) ?? 0,
      },
      connectionErrors,
      serverErrors,
      non2xx,
      failureSamples,
      statuses,
      timeline: timeline.buckets(),
      failureTimes: timeline.failures,
      counts: { uploads: total, accepted: accepted.length },
    },
  }
}
