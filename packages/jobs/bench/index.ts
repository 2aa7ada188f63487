// pnpm bench: @scale/jobs against raw BullMQ in one process run, on servers from the testkit.
//   e2e    jobs/s from the first enqueue to the last completion, concurrency 50, trivial handler
//   add    single-job enqueues per second (50 in flight)
//   relay  outbox rows moved to BullMQ per second by one relay
// Rounds alternate between the two sides so drift on a shared machine hits both alike; the
// median round counts.
import { randomBytes } from 'node:crypto'
import { type PostgresCluster, type RedisServer, startPostgres, startRedis } from '@scale/testkit'
import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { z } from 'zod'
import { createOutbox, createOutboxRelay, createProducer, createWorker, defineJob } from '../src/index.js'

const E2E_JOBS = Number(process.env.BENCH_E2E_JOBS ?? 20_000)
const ADD_JOBS = Number(process.env.BENCH_ADD_JOBS ?? 5_000)
const RELAY_ROWS = Number(process.env.BENCH_RELAY_ROWS ?? 20_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CONCURRENCY = 50
const CHUNK = 100

const schema = z.object({ n: z.number().int() })
const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number
const name = (base: string) => `${base}-${randomBytes(3).toString('hex')}`

function connect(server: RedisServer): Redis {
  const redis = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: null })
  redis.on('error', () => {})
  return redis
}

/** Resolves when `count()` reaches `target`. */
function completion(target: number): { done: Promise<void>; tick: () => void } {
  let seen = 0
  let resolve: () => void = () => {}
  const done = new Promise<void>((r) => {
    resolve = r
  })
  return {
    done,
    tick: () => {
      if (++seen === target) resolve()
    },
  }
}

async function runWithConcurrency(
  total: number,
  inFlight: number,
  task: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) await task(next++)
    }),
  )
}

async function e2eRaw(redis: Redis): Promise<number> {
  const queue = name('bench-raw')
  const q = new Queue(queue, { connection: redis, prefix: '{jobs}' })
  const { done, tick } = completion(E2E_JOBS)
  const worker = new Worker(
    queue,
    async (job) => {
      const data = job.data as { n: number }
      tick()
      return data.n
    },
    { connection: redis, prefix: '{jobs}', concurrency: CONCURRENCY },
  )
  await worker.waitUntilReady()
  const started = performance.now()
  for (let i = 0; i < E2E_JOBS; i += CHUNK) {
    await q.addBulk(
      Array.from({ length: Math.min(CHUNK, E2E_JOBS - i) }, (_, k) => ({
        name: 'work',
        data: { n: i + k },
        opts: {
          attempts: 3,
          backoff: { type: 'exponential', delay: 1000 },
          removeOnComplete: { count: 10_000 },
          removeOnFail: { count: 10_000 },
        },
      })),
    )
  }
  await done
  const rate = E2E_JOBS / ((performance.now() - started) / 1000)
  await worker.close()
  await q.obliterate({ force: true })
  await q.close()
  return rate
}

async function e2eScale(redis: Redis): Promise<number> {
  const queue = name('bench-scale')
  const { done, tick } = completion(E2E_JOBS)
  const job = defineJob({
    name: 'work',
    queue,
    schema,
    handler: ({ n }) => {
      tick()
      return n
    },
  })
  const producer = createProducer({ connection: redis })
  const worker = createWorker({
    connection: redis,
    jobs: [job],
    concurrency: CONCURRENCY,
    shutdown: { signals: [] },
  })
  await Promise.all(worker.bullWorkers.map((w) => w.waitUntilReady()))
  const started = performance.now()
  for (let i = 0; i < E2E_JOBS; i += CHUNK) {
    await producer.enqueueMany(
      job,
      Array.from({ length: Math.min(CHUNK, E2E_JOBS - i) }, (_, k) => ({ payload: { n: i + k } })),
    )
  }
  await done
  const rate = E2E_JOBS / ((performance.now() - started) / 1000)
  await worker.close()
  await producer.queue(queue).obliterate({ force: true })
  await producer.close()
  return rate
}

async function addRaw(redis: Redis): Promise<number> {
  const q = new Queue(name('bench-add-raw'), { connection: redis, prefix: '{jobs}' })
  await q.waitUntilReady()
  const started = performance.now()
  await runWithConcurrency(ADD_JOBS, CONCURRENCY, (n) =>
    q.add(
      'work',
      { n },
      {
        attempts: 3,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: { count: 10_000 },
        removeOnFail: { count: 10_000 },
      },
    ),
  )
  const rate = ADD_JOBS / ((performance.now() - started) / 1000)
  await q.obliterate({ force: true })
  await q.close()
  return rate
}

async function addScale(redis: Redis): Promise<number> {
  const job = defineJob({ name: 'work', queue: name('bench-add-scale'), schema, handler: () => {} })
  const producer = createProducer({ connection: redis })
  await producer.queue(job.queue).waitUntilReady()
  const started = performance.now()
  await runWithConcurrency(ADD_JOBS, CONCURRENCY, (n) => producer.enqueue(job, { n }))
  const rate = ADD_JOBS / ((performance.now() - started) / 1000)
  await producer.queue(job.queue).obliterate({ force: true })
  await producer.close()
  return rate
}

async function relayRate(redis: Redis, postgres: PostgresCluster): Promise<number> {
  const pool = new pg.Pool({ ...postgres.primary.connection, max: 8 })
  pool.on('error', () => {})
  const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool }) })
  const outbox = createOutbox({ table: name('bench_outbox').replace(/-/g, '_') })
  await outbox.createTable(db)
  const job = defineJob({ name: 'work', queue: name('bench-relay'), schema, handler: () => {} })
  for (let i = 0; i < RELAY_ROWS; i += 1_000) {
    await db.transaction().execute((trx) =>
      outbox.enqueueMany(
        trx,
        job,
        Array.from({ length: 1_000 }, (_, k) => ({ payload: { n: i + k } })),
      ),
    )
  }
  const relay = createOutboxRelay({ db, connection: redis, table: outbox.table, batchSize: 500 })
  const started = performance.now()
  let moved = 0
  while (moved < RELAY_ROWS) moved += await relay.relayOnce()
  const rate = moved / ((performance.now() - started) / 1000)
  await relay.stop()
  const check = new Queue(job.queue, { connection: redis, prefix: '{jobs}' })
  const inQueue = await check.getWaitingCount()
  if (inQueue !== RELAY_ROWS) throw new Error(`relay moved ${inQueue} jobs, expected ${RELAY_ROWS}`)
  await check.obliterate({ force: true })
  await check.close()
  await db.destroy()
  return rate
}

async function main(): Promise<void> {
  const benchStarted = Date.now()
  const [server, postgres] = await Promise.all([startRedis(), startPostgres()])
  const redis = connect(server)
  try {
    // Warm-up: script loading, JIT, connections.
    await e2eRaw(redis)
    await e2eScale(redis)
    const e2e = { raw: [] as number[], scale: [] as number[] }
    const add = { raw: [] as number[], scale: [] as number[] }
    const order = (round: number) =>
      round % 2 === 1 ? (['scale', 'raw'] as const) : (['raw', 'scale'] as const)
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of order(round))
        e2e[side].push(side === 'raw' ? await e2eRaw(redis) : await e2eScale(redis))
    }
    await addRaw(redis)
    await addScale(redis)
    for (let round = 0; round < ROUNDS + 4; round++) {
      for (const side of order(round))
        add[side].push(side === 'raw' ? await addRaw(redis) : await addScale(redis))
    }
    const relay = await relayRate(redis, postgres)
    const result = {
      e2eJobsPerSec: { scale: Math.round(median(e2e.scale)), bullmq: Math.round(median(e2e.raw)) },
      e2eRatio: Number((median(e2e.scale) / median(e2e.raw)).toFixed(3)),
      addOpsPerSec: { scale: Math.round(median(add.scale)), bullmq: Math.round(median(add.raw)) },
      addRatio: Number((median(add.scale) / median(add.raw)).toFixed(3)),
      outboxRelayJobsPerSec: Math.round(relay),
      e2eJobs: E2E_JOBS,
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      durationSec: Math.round((Date.now() - benchStarted) / 1000),
    }
    const rows = [
      ['metric', '@scale/jobs', 'raw BullMQ', 'ratio'],
      ['e2e jobs/s (c=50)', result.e2eJobsPerSec.scale, result.e2eJobsPerSec.bullmq, result.e2eRatio],
      ['add ops/s', result.addOpsPerSec.scale, result.addOpsPerSec.bullmq, result.addRatio],
      ['outbox relay jobs/s', result.outboxRelayJobsPerSec, '-', '-'],
    ]
    for (const row of rows) console.log(row.map((cell) => String(cell).padEnd(20)).join(''))
    console.log(
      `rounds: e2e scale=${e2e.scale.map(Math.round).join(',')} raw=${e2e.raw.map(Math.round).join(',')}`,
    )
    console.log(
      `rounds: add scale=${add.scale.map(Math.round).join(',')} raw=${add.raw.map(Math.round).join(',')}`,
    )
    console.log(`BENCH ${JSON.stringify(result)}`)
  } finally {
    redis.disconnect()
    await Promise.all([server.dispose(), postgres.stop()])
  }
}

await main()
