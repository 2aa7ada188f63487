/**
 * One photo worker of stage 9 as its own process: runs `process-photo` jobs (sharp) and relays the
 * outbox to BullMQ. The runner forks it with its config in DEMO_WORKER_CONFIG, starts and kills it
 * like a web server, and learns its metrics port over IPC. It exits when the runner goes away.
 */
import { createServer } from 'node:http'
import { createOutboxRelay, createWorker } from '@scale/jobs'
import { Redis } from 'ioredis'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { pino } from 'pino'
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client'
import { photoJob } from './photo-job.js'
import type { Database } from './schema.js'
import { makeThumbnail } from './thumbnail.js'
import { parseWorkerConfig } from './worker-config.js'

const config = parseWorkerConfig(JSON.parse(process.env.DEMO_WORKER_CONFIG ?? '{}'))
const log = pino({ level: 'info', base: { server: config.name, pid: process.pid } })

const pool = new pg.Pool({ connectionString: config.primary, max: config.concurrency + 2 })
pool.on('error', (error) => log.warn({ err: error }, 'idle database connection lost'))
const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
// Workers wait out a Redis outage (BullMQ's blocking commands need maxRetriesPerRequest: null).
const redis = new Redis(config.redis, { maxRetriesPerRequest: null })

const registry = new Registry()
registry.setDefaultLabels({ server: config.name })
collectDefaultMetrics({ register: registry })
const processed = new Counter({
  name: 'photo_jobs_processed_total',
  help: 'Photos turned into thumbnails by this worker',
  registers: [registry],
})
const jobSeconds = new Histogram({
  name: 'photo_job_duration_seconds',
  help: 'Time one process-photo job took in this worker',
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
})

const job = photoJob(async ({ photoId, hue, requestId }) => {
  const stop = jobSeconds.startTimer()
  const uploaded = await db
    .selectFrom('photo_originals')
    .select('bytes')
    .where('photo_id', '=', photoId)
    .executeTakeFirst()
  const jpeg = await makeThumbnail(hue, uploaded?.bytes)
  // A job re-run after a killed worker finds the row there: the first thumbnail stays.
  await db
    .insertInto('photo_thumbnails')
    .values({ photo_id: photoId, jpeg, worker: config.name })
    .onConflict((c) => c.column('photo_id').doNothing())
    .execute()
  stop()
  processed.inc()
  log.info({ reqId: requestId, photoId }, 'thumbnail made')
})

const worker = createWorker({
  connection: redis,
  jobs: [job],
  concurrency: config.concurrency,
  // Short locks so a SIGKILLed worker's jobs come back within seconds (the default is 30 s).
  lockDurationMs: 4_000,
  stalledIntervalMs: 2_000,
  logger: log,
})
// Every worker also relays committed outbox rows to BullMQ (several relays may run at once).
const relay = createOutboxRelay({ db, connection: redis, pollIntervalMs: 100, logger: log })
relay.start()

const http = createServer((request, response) => {
  if (request.url === '/metrics') {
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => response.writeHead(500).end(),
    )
  } else if (request.url === '/healthz') {
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true }))
  } else {
    response.writeHead(404).end()
  }
})
http.listen(0, '127.0.0.1', () => {
  const address = http.address()
  const port = typeof address === 'object' && address ? address.port : 0
  log.info({ port, concurrency: config.concurrency }, 'worker running')
  process.send?.({ type: 'listening', port })
})

let stopping = false
async function shutdown(reason: string): Promise<void> {
  if (stopping) return
  stopping = true
  log.info({ reason }, 'worker stopping')
  const forced = setTimeout(() => process.exit(0), 5_000)
  forced.unref()
  await worker.close({ deadlineMs: 4_000 }).catch(() => {})
  await relay.close().catch(() => {})
  http.close()
  await db.destroy().catch(() => {})
  redis.disconnect()
  process.exit(0)
}
process.on('disconnect', () => void shutdown('runner gone'))
process.on('SIGTERM', () => void shutdown('SIGTERM'))
process.on('SIGINT', () => void shutdown('SIGINT'))
