import { join } from 'node:path'
import { createAssetUrls } from '../app/assets.js'
import { logInUsers } from '../load/login.js'
import { assetMix, loggedInMix } from '../load/mixes.js'
import { runLoad } from '../load/run-load.js'
import { trickleUploads } from '../load/upload-trickle.js'
import { startDashboard } from '../observe/dashboard.js'
import { LiveMetrics } from '../observe/live-metrics.js'
import { logFilesIn, searchLogs } from '../observe/log-search.js'
import type { Topology } from '../topology/topology.js'
import { steadyLoad } from './phases.js'
import type { Stage } from './stage.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function waitForThumbnail(topology: Topology, photoId: number): Promise<boolean> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const response = await fetch(`${topology.originUrl}/thumbnails/${photoId}.jpg`).catch(() => undefined)
    await response?.arrayBuffer()
    if (response?.status === 200) return true
    await sleep(250)
  }
  return false
}

function logFiles(topology: Topology): string[] {
  const haproxy = topology.loadBalancer ? [join(topology.loadBalancer.dir, 'haproxy.log')] : []
  return [...haproxy, ...logFilesIn(topology.spec.logDir)]
}

const max = (values: (number | null)[]) => Math.max(0, ...values.filter((v): v is number => v !== null))
const definedOnly = (figures: Record<string, number | undefined>) =>
  Object.fromEntries(Object.entries(figures).filter(([, v]) => v !== undefined)) as Record<string, number>

/** Mean of the samples that had a value; undefined when none had one (shown as "—", not 0). */
const mean = (values: (number | null)[]) => {
  const present = values.filter((v): v is number => v !== null)
  return present.length
    ? Math.round((present.reduce((a, b) => a + b, 0) / present.length) * 1000) / 1000
    : undefined
}

/** Logs searchable by request ID across processes, /metrics on every process, a live dashboard. */
export const logsMetrics: Stage = {
  number: 10,
  title: 'logs and metrics',
  whatAppears:
    'request IDs from HAProxy through web servers to workers; /metrics scraped into a live dashboard',
  topology: () => ({
    replicas: 1,
    webServers: 2,
    loadBalancer: true,
    redis: true,
    edge: true,
    unixSocket: false,
    app: { cache: true, sessions: true },
    workers: 1,
    requestIds: true,
  }),
  async serve(topology) {
    // `--stage 10`: the dashboard watches the stage's processes until Ctrl-C; stopped before the
    // servers it scrapes (its Redis client would otherwise report the refused reconnects).
    const live = new LiveMetrics(topology)
    live.start()
    const dashboard = await startDashboard(live)
    topology.adopt(async () => {
      await dashboard.close()
      await live.stop()
    })
    return { dashboard: dashboard.url }
  },
  async run(topology, context) {
    const { progress } = context
    progress.step(`logging in ${context.connections} users`)
    const users = await logInUsers(topology.originUrl, context.connections, context.users)
    const live = new LiveMetrics(topology)
    // A quick run's load lasts ~6 s: scrape twice a second so the dashboard and report get a curve.
    const scrapeEveryMs = context.durations.steadyMs < 10_000 ? 500 : 1_000
    live.start(scrapeEveryMs)
    const dashboard = await startDashboard(live)
    progress.note(`  live dashboard: ${dashboard.url}`)
    try {
      // Page loads and asset loads at once (edge hits), and uploads (queue) while the dashboard watches.
      const steady = steadyLoad(topology, context, () => loggedInMix(users, context.users))
      const assets = runLoad({
        url: topology.entryUrl,
        durationMs: context.durations.warmupMs + context.durations.steadyMs,
        connections: 4,
        mix: assetMix(createAssetUrls('')('/assets/app.css'), 2_000),
      })
      const uploads = trickleUploads(topology.originUrl, users, Promise.all([steady, assets]), 150)
      const [{ load, measures }, , { confirmed: traced }] = await Promise.all([steady, assets, uploads])
      const figures = live.history.slice()

      progress.step('following one upload through the logs')
      const last = traced.filter((upload) => upload.requestId !== undefined).at(-1)
      const processed = last ? await waitForThumbnail(topology, last.photoId) : false
      await sleep(500) // the worker's log line is written right after the thumbnail row
      const trace = last?.requestId ? searchLogs(logFiles(topology), last.requestId) : []
      const processes = [...new Set(trace.map((t) => t.process))]
      const busy = figures.filter((f) => f.requestsPerSecond > 0)
      return {
        load,
        measures: {
          ...measures,
          liveSamples: figures.length,
          processesScraped: max(figures.map((f) => f.scraped)),
          peakLiveRequestsPerSecond: max(figures.map((f) => f.requestsPerSecond)),
          liveErrorsPerSecondPeak: max(figures.map((f) => f.errorsPerSecond)),
          liveMeanLatencyMs: mean(busy.map((f) => f.meanLatencyMs)) ?? 0,
          // The edge's counters can take seconds to read under load: no reading is no ratio.
          ...definedOnly({
            liveCacheHitRatio: mean(busy.map((f) => f.cacheHitRatio)),
            edgeHitRatio: mean(busy.map((f) => f.edgeHitRatio)),
          }),
          peakQueueDepth: max(figures.map((f) => f.queueDepth)),
          peakLoggedInUsers: max(figures.map((f) => f.loggedInUsers)),
          tracedUploads: traced.length,
          traceProcesses: processes.join(', '),
          traceLines: trace.length,
        },
        drill: undefined,
        liveMetrics: figures,
        notes: [
          `The dashboard scraped ${max(figures.map((f) => f.scraped))} processes' /metrics every ${scrapeEveryMs} ms: up to ` +
            `${max(figures.map((f) => f.requestsPerSecond))} requests/s, ${max(figures.map((f) => f.loggedInUsers))} logged-in users, ` +
            `queue depth up to ${max(figures.map((f) => f.queueDepth))}.`,
          last
            ? `Request ${last.requestId} (upload of photo ${last.photoId}${processed ? '' : ', not processed in 30 s'}) ` +
              `found in ${trace.length} log lines of ${processes.join(', ') || 'no process'}: ` +
              trace.map((t) => `[${t.process}] ${t.line.slice(0, 220)}`).join(' · ')
            : 'No upload was confirmed, so no request was traced.',
        ],
      }
    } finally {
      await dashboard.close()
      await live.stop()
    }
  },
}
