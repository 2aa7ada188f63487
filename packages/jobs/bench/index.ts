// pnpm bench: @scale/jobs against raw BullMQ in one process run, on servers from the testkit.
//   e2e    jobs/s from the first enqueue to the last completion, concurrency 50, trivial handler
//   add    single-job enqueues per second (50 in flight)
//   relay  outbox rows moved to BullMQ per second by one relay
// @scale/jobs runs three times: validate off (like for like: raw BullMQ checks nothing), validate
// on, and validate on with OpenTelemetry spans (bullmq-otel): the cost of each.
// All sides run in many short rotating slices and each side's time is summed, so drift in
// the load of a shared machine falls on all alike.
import { context, propagation, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import { type PostgresCluster, type RedisServer, startPostgres, startRedis, uniqueName } from '@scale/testkit'
import { Queue, Worker } from 'bullmq'
import { BullMQOtel } from 'bullmq-otel'
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
const name = (base: string) => uniqueName(`${base}-`)

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
async function scaleSide(redis: Redis, validate: boolean, telemetry?: BullMQOtel): Promise<Side> {
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
  const producer = createProducer({ connection: redis, ...(telemetry && { telemetry }) })
  const worker = createWorker({
    connection: redis,
    jobs: [job],
    concurrency: CONCURRENCY,
    ...(telemetry && { telemetry }),
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

/** raw BullMQ; @scale/jobs with validation off, on, and on with OpenTelemetry spans. */
const SIDE_NAMES = ['raw', 'scale', 'validated', 'traced'] as const
type SideName = (typeof SIDE_NAMES)[number]
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
): Promise<{ rates: Record<SideName, number>; ratios: Record<SideName, number> }> {
  const elapsed = Object.fromEntries(SIDE_NAMES.map((n) => [n, 0])) as Record<SideName, number>
  const perRound = Object.fromEntries(SIDE_NAMES.map((n) => [n, [] as number[]])) as Record<
    SideName,
    number[]
  >
  for (let done = 0, round = 0; done < total; done += slice, round++) {
    const order = SIDE_NAMES.map((_, i) => SIDE_NAMES[(i + round) % SIDE_NAMES.length] as SideName)
    const took = { ...elapsed }
    for (const key of order) {
      const started = performance.now()
      await task(sides[key], Math.min(slice, total - done))
      took[key] = performance.now() - started
      elapsed[key] += took[key]
    }
    for (const key of SIDE_NAMES) perRound[key].push(took.raw / took[key])
  }
  const median = (values: number[]) => values.sort((x, y) => x - y)[Math.floor(values.length / 2)] as number
  const rates = Object.fromEntries(SIDE_NAMES.map((n) => [n, total / (elapsed[n] / 1000)]))
  const ratios = Object.fromEntries(SIDE_NAMES.map((n) => [n, median(perRound[n])]))
  return { rates: rates as Record<SideName, number>, ratios: ratios as Record<SideName, number> }
}

/**
 * What an app with the OpenTelemetry SDK has: a tracer provider whose spans go to an exporter
 * (here one that drops them, so the figure is the cost of making and propagating spans), a
 * context manager and the W3C propagator.
 */
function startTracing(): BullMQOtel {
  const dropping: SpanExporter = {
    export: (_spans, done) => done({ code: 0 }),
    shutdown: async () => {},
  }
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropping)] }),
  )
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  return new BullMQOtel({ tracerName: 'bench' })
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
  await relay.close()
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
      traced: await scaleSide(redis, true, startTracing()),
    }
    // Warm-up: script loading, JIT, connections.
    await interleaved(sides, 2_000, 1_000, (side, count) => side.e2e(count))
    await interleaved(sides, 2_000, 1_000, (side, count) => side.add(count))
    const e2eRates = await interleaved(sides, E2E_JOBS, E2E_SLICE, (side, count) => side.e2e(count))
    const addRates = await interleaved(sides, ADD_JOBS, ADD_SLICE, (side, count) => side.add(count))
    for (const side of Object.values(sides)) await side.close()
    const relay = await relayRate(redis, postgres)
    const round = (rates: Record<SideName, number>) =>
      Object.fromEntries(SIDE_NAMES.map((n) => [n === 'raw' ? 'bullmq' : n, Math.round(rates[n])]))
    const fixed = (ratios: Record<SideName, number>) =>
      Object.fromEntries(SIDE_NAMES.filter((n) => n !== 'raw').map((n) => [n, Number(ratios[n].toFixed(3))]))
    const result = {
      // `scale` is validation off and no OpenTelemetry: like for like with raw BullMQ.
      e2eJobsPerSec: round(e2eRates.rates),
      e2eRatio: Number(e2eRates.ratios.scale.toFixed(3)),
      e2eRatios: fixed(e2eRates.ratios),
      addOpsPerSec: round(addRates.rates),
      addRatio: Number(addRates.ratios.scale.toFixed(3)),
      addRatios: fixed(addRates.ratios),
      outboxRelayJobsPerSec: Math.round(relay),
      e2eJobs: E2E_JOBS,
      addJobs: ADD_JOBS,
      concurrency: CONCURRENCY,
      durationSec: Math.round((Date.now() - benchStarted) / 1000),
    }
    const cells = (rates: Record<SideName, number>, ratios: Record<SideName, number>) =>
      SIDE_NAMES.flatMap((n) =>
        n === 'raw' ? [Math.round(rates[n])] : [Math.round(rates[n]), ratios[n].toFixed(3)],
      )
    const rows = [
      ['metric', 'raw BullMQ', 'validate off', 'ratio', 'validate on', 'ratio', '+ OTel spans', 'ratio'],
      ['e2e jobs/s (c=50)', ...cells(e2eRates.rates, e2eRates.ratios)],
      ['add ops/s', ...cells(addRates.rates, addRates.ratios)],
      ['outbox relay jobs/s', '-', result.outboxRelayJobsPerSec],
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
