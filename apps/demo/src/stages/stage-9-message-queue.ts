import { uploadBurst } from '../load/upload-burst.js'
import { QueueAutoscaler } from './queue-autoscaler.js'
import type { DrillResult, Stage } from './stage.js'

const MIN_WORKERS = 1
/** Workers at the start: the one killed mid-burst is not the only one. */
const START_WORKERS = 2
const MAX_WORKERS = 4
/** Jobs at once per worker process (the worker-config default). */
const CONCURRENCY = 2
/** Uploads per second of the burst: more than one worker makes thumbnails on this machine. */
const UPLOAD_RATE = 40

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * @scale/jobs: an upload writes the photo row and its job (outbox) in one transaction; worker
 * processes make the thumbnail with sharp. A burst fills the queue, the scaling signal asks for
 * workers and gets them, a worker is SIGKILLed mid-burst, and every confirmed photo is counted.
 */
export const messageQueue: Stage = {
  number: 9,
  title: 'message queue',
  whatAppears: '@scale/jobs: uploads become jobs (transactional outbox), photo workers scale with the queue',
  topology: () => ({
    replicas: 1,
    webServers: 2,
    loadBalancer: true,
    redis: true,
    edge: true,
    unixSocket: false,
    app: { cache: true },
    workers: START_WORKERS,
  }),
  async run(topology, context) {
    const { progress, durations } = context
    const burstMs = durations.drillMs
    const scaler = new QueueAutoscaler(topology, {
      minWorkers: MIN_WORKERS,
      maxWorkers: MAX_WORKERS,
      concurrencyPerWorker: CONCURRENCY,
      targetDrainSeconds: Math.max(3, burstMs / 4000),
      sampleMs: 500,
      idleSamplesToScaleIn: 4,
    })
    scaler.start()
    try {
      progress.step(`upload burst: ${UPLOAD_RATE}/s for ${burstMs / 1000} s`)
      const burstStart = scaler.elapsedMs
      let killed = ''
      const burst = await uploadBurst({
        url: topology.originUrl,
        ratePerSecond: UPLOAD_RATE,
        durationMs: burstMs,
        users: Math.min(context.users, 1_000),
        at: [
          {
            atMs: Math.round(burstMs * 0.4),
            run: async () => {
              const victim = scaler.running[0]
              if (!victim) return
              killed = victim.name
              scaler.note(`${victim.name} killed (SIGKILL) with jobs in flight`)
              progress.note(`  ${victim.name} killed (SIGKILL)`)
              await victim.kill()
            },
          },
        ],
      })
      progress.step(`waiting for ${burst.accepted.length} thumbnails`)
      const deadline = Date.now() + 90_000
      let processed = await scaler.processedOf(burst.accepted)
      while (processed < burst.accepted.length && Date.now() < deadline) {
        await sleep(500)
        processed = await scaler.processedOf(burst.accepted)
      }
      const drainedAtMs = scaler.elapsedMs
      // Let the autoscaler see the empty queue and scale back in.
      const scaleInBy = Date.now() + 15_000
      while (scaler.running.length > MIN_WORKERS && Date.now() < scaleInBy) await sleep(250)
      await sleep(1_000)
      await scaler.stop()

      const samples = scaler.samples
      const lost = burst.accepted.length - processed
      const peakBacklog = Math.max(0, ...samples.map((s) => s.backlog))
      const peakWorkers = Math.max(0, ...samples.map((s) => s.workers))
      const latencies = samples.flatMap((s) => (s.latencyMs === null ? [] : [s.latencyMs]))
      const events = scaler.events.map((e) => ({ atMs: e.atMs - burstStart, what: e.what }))
      const drill: DrillResult = {
        name: 'upload burst, a worker SIGKILLed',
        events,
        errors: burst.load.connectionErrors + burst.load.serverErrors,
        recoveryMs: 0,
        load: burst.load,
        timeline: burst.load.timeline,
        measures: {
          uploadsConfirmed: burst.accepted.length,
          thumbnailsMade: processed,
          lostPhotos: lost,
          workerKilled: killed,
        },
      }
      const drainS = Math.round((drainedAtMs - burstStart) / 100) / 10
      return {
        load: burst.load,
        measures: {
          uploadsConfirmed: burst.accepted.length,
          thumbnailsMade: processed,
          lostPhotos: lost,
          peakBacklog,
          peakWorkers,
          workersAtEnd: scaler.running.length,
          peakJobLatencyMs: Math.max(0, ...latencies),
          drainSeconds: drainS,
        },
        drill,
        queueTimeline: samples,
        notes: [
          `${burst.accepted.length} uploads confirmed, ${processed} thumbnails made: ${lost} photos lost ` +
            `although ${killed || 'no worker'} was SIGKILLed mid-burst.`,
          `The queue peaked at ${peakBacklog} jobs; following the scaling signal the workers went from ` +
            `${START_WORKERS} to ${peakWorkers} and back to ${scaler.running.length}; all done ${drainS} s after the burst began.`,
        ],
      }
    } finally {
      await scaler.stop()
    }
  },
}
