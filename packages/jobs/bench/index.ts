// pnpm bench: @scale/jobs against raw BullMQ in one process run, on servers from the testkit.
//   e2e    jobs/s from the first enqueue to the last completion, concurrency 50, trivial handler
//   add    single-job enqueues per second (50 in flight)
//   relay  outbox rows moved to BullMQ per second by one relay
// @scale/jobs runs twice: validate off (like for like: raw BullMQ checks nothing) and on (its cost).
// All sides run in many short rotating slices and each side's time is summed, so drift in
// the load of a shared machine falls on all alike.
import { randomBytes } from 'node:crypto'
import { type PostgresCluster, type RedisServer, startPostgres, startRedis } from '@scale/testkit'
import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { z } from 'zod'
import { createOutbox, createOutboxRelay, createProducer, createWorker, defineJob } from '../src/index.js'

const E2E_JOBS = Number(process.env.BENCH_E2E_JOBS ?? 30_000)
const E2E_SLICE = 1_000
const ADD_JOBS = Number(process.env.BENCH_ADD_JOBS ?? 30_000)
const ADD_SLICE = 500
const RELAY_ROWS = Number(process.env.BENCH_RELAY_ROWS ?? 20_000)
const CONCURRENCY = 50
const CHUNK = 100

const schema = z.object({ n: z.number().int() })
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

/** One side of the comparison: enqueue `count` jobs and resolve when all have completed. */
interface Side {
  e2e(count: number): Promise<void>
  add(count: number): Promise<void>
  close(): Promise<void>
}

const RAW_OPTS = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { count: 10_000 },
  removeOnFail: { count: 10_000 },
}

async function rawSide(redis: Redis): Promise<Side> {
  const queue = name('bench-raw')
  const q = new Queue(queue, { connection: redis, prefix: '{jobs}' })
  const addQueue = new Queue(name('bench-add-raw'), { connection: redis, prefix: '{jobs}' })
  let tick: () => void = () => {}
  const worker = new Worker(
    queue,
    async (job) => {
      const data = job.data as { n: number }
      tick()
      return data.n
    },
    { connection: redis, prefix: '{jobs}', concurrency: CONCURRENCY },
  )
  await Promise.all([worker.waitUntilReady(), q.waitUntilReady(), addQueue.waitUntilReady()])
  return {
    async e2e(count) {
      const done = completion(count)
      tick = done.tick
      for (let i = 0; i < count; i += CHUNK) {
        await q.addBulk(
          Array.from({ length: Math.min(CHUNK, count - i) }, (_, k) => ({
            name: 'work',
            data: { n: i + k },
            opts: RAW_OPTS,
          })),
        )
      }
      await done.done
    },
    async add(count) {
      await runWithConcurrency(count, CONCURRENCY, (n) => addQueue.add('work', { n }, RAW_OPTS))
    },
    async close() {
      await worker.close()
      for (const each of [q, addQueue]) {
        await each.obliterate({ force: true })
        await each.close()
      }
    },
  }
}

/** `validate: false` is the like-for-like comparison with raw BullMQ (which checks nothing). */
async function scaleSide(redis: Redis, validate: boolean): Promise<Side> {
  const queue = name('bench-scale')
  let tick: () => void = () => {}
  const job = defineJob({
    name: 'work',
    queue,
    schema,
    validate,
    handler: ({ n }) => {
      tick()
      return n
    },
  })
  const addJob = defineJob({
    name: 'work',
    queue: name('bench-add-scale'),
    schema,
    validate,
    handler: () => {},
  })
  const producer = createProducer({ connection: redis })
  const worker = createWorker({
    connection: redis,
    jobs: [job],
    concurrency: CONCURRENCY,
    shutdown: { signals: [] },
  })
  await Promise.all([
    ...worker.bullWorkers.map((w) => w.waitUntilReady()),
    producer.queue(queue).waitUntilReady(),
    producer.queue(addJob.queue).waitUntilReady(),
  ])
  return {
    async e2e(count) {
      const done = completion(count)
      tick = done.tick
      for (let i = 0; i < count; i += CHUNK) {
        await producer.enqueueMany(
          job,
          Array.from({ length: Math.min(CHUNK, count - i) }, (_, k) => ({ payload: { n: i + k } })),
        )
      }
      await done.done
    },
    async add(count) {
      await runWithConcurrency(count, CONCURRENCY, (n) => producer.enqueue(addJob, { n }))
    },
    async close() {
      await worker.close()
      for (const each of [queue, addJob.queue]) await producer.queue(each).obliterate({ force: true })
      await producer.close()
    },
  }
}

type SideName = 'raw' | 'scale' | 'validated'
type Sides = Record<SideName, Side>

/**
 * Runs `task` on every side in many short slices, rotating which goes first. Rates are each
 * side's total over its summed time; each ratio (to raw BullMQ) is the median of the per-round
 * ratios, so a burst of load from other processes on a shared machine, which hits one slice, does
 * not decide it.
 */
async function interleaved(
  sides: Sides,
  total: number,
  slice: number,
  task: (side: Side, count: number) => Promise<void>,
): Promise<Record<SideName, number> & { ratio: number; validatedRatio: number }> {
  const names: SideName[] = ['raw', 'scale', 'validated']
  const elapsed = { raw: 0, scale: 0, validated: 0 }
  const ratios: number[] = []
  const validatedRatios: number[] = []
  for (let done = 0, round = 0; done < total; done += slice, round++) {
    const order = names.map((_, i) => names[(i + round) % names.length] as SideName)
    const took = { raw: 0, scale: 0, validated: 0 }
    for (const key of order) {
      const started = performance.now()
      await task(sides[key], Math.min(slice, total - done))
      took[key] = performance.now() - started
      elapsed[key] += took[key]
    }
    ratios.push(took.raw / took.scale)
    validatedRatios.push(took.raw / took.validated)
  }
  const median = (values: number[]) => values.sort((x, y) => x - y)[Math.floor(values.length / 2)] as number
  return {
    raw: total / (elapsed.raw / 1000),
    scale: total / (elapsed.scale / 1000),
    validated: total / (elapsed.validated / 1000),
    ratio: median(ratios),
    validatedRatio: median(validatedRatios),
  }
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
    const sides: Sides = {
      raw: await rawSide(redis),
      scale: await scaleSide(redis, false),
      validated: await scaleSide(redis, true),
    }
    // Warm-up: script loading, JIT, connections.
    await interleaved(sides, 2_000, 1_000, (side, count) => side.e2e(count))
    await interleaved(sides, 2_000, 1_000, (side, count) => side.add(count))
    const e2eRates = await interleaved(sides, E2E_JOBS, E2E_SLICE, (side, count) => side.e2e(count))
    const addRates = await interleaved(sides, ADD_JOBS, ADD_SLICE, (side, count) => side.add(count))
    for (const side of Object.values(sides)) await side.close()
    const relay = await relayRate(redis, postgres)
    const result = {
      e2eJobsPerSec: {
        scale: Math.round(e2eRates.scale),
        scaleValidated: Math.round(e2eRates.validated),
        bullmq: Math.round(e2eRates.raw),
      },
      e2eRatio: Number(e2eRates.ratio.toFixed(3)),
      e2eValidatedRatio: Number(e2eRates.validatedRatio.toFixed(3)),
      addOpsPerSec: {
        scale: Math.round(addRates.scale),
        scaleValidated: Math.round(addRates.validated),
        bullmq: Math.round(addRates.raw),
      },
      addRatio: Number(addRates.ratio.toFixed(3)),
      addValidatedRatio: Number(addRates.validatedRatio.toFixed(3)),
      outboxRelayJobsPerSec: Math.round(relay),
      e2eJobs: E2E_JOBS,
      addJobs: ADD_JOBS,
      concurrency: CONCURRENCY,
      durationSec: Math.round((Date.now() - benchStarted) / 1000),
    }
    const rows = [
      ['metric', 'raw BullMQ', 'validate off', 'ratio', 'validate on', 'ratio'],
      [
        'e2e jobs/s (c=50)',
        result.e2eJobsPerSec.bullmq,
        result.e2eJobsPerSec.scale,
        result.e2eRatio,
        result.e2eJobsPerSec.scaleValidated,
        result.e2eValidatedRatio,
      ],
      [
        'add ops/s',
        result.addOpsPerSec.bullmq,
        result.addOpsPerSec.scale,
        result.addRatio,
        result.addOpsPerSec.scaleValidated,
        result.addValidatedRatio,
      ],
      ['outbox relay jobs/s', '-', result.outboxRelayJobsPerSec, '-', '-', '-'],
    ]
    for (const row of rows) {
      console.log(row.map((cell, i) => String(cell).padEnd(i === 0 ? 22 : 14)).join(''))
    }
    console.log(`BENCH ${JSON.stringify(result)}`)
  } finally {
    redis.disconnect()
    await Promise.all([server.dispose(), postgres.stop()])
  }
}

await main()
