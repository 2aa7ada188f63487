import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { waitFor } from '@scale/testkit'
import { uniqueName, usePostgres, useRedis } from '@scale/testkit/vitest'
import { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createOutbox,
  createOutboxRelay,
  createWorker,
  defineJob,
  InvalidPayloadError,
  JobsClosedError,
  JobsOptionsError,
} from '../src/index.js'
import { jobsClient, sleep } from './helpers.js'

const relayFile = fileURLToPath(new URL('./fixtures/relay-process.ts', import.meta.url))

interface Database {
  orders: { id: number; total: number }
}

const postgres = usePostgres()
const env = useRedis({ connect: jobsClient })
let redis: Redis
let db: Kysely<Database>
const children: ChildProcess[] = []

beforeAll(async () => {
  redis = env.redis
  const pool = new pg.Pool({ ...postgres.primary.connection, max: 12 })
  // Idle connections see the server's shutdown in afterAll; that is expected, not a failure.
  pool.on('error', () => {})
  db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  await db.schema
    .createTable('orders')
    .addColumn('id', 'integer', (col) => col.primaryKey())
    .addColumn('total', 'integer', (col) => col.notNull())
    .execute()
  await createOutbox().createTable(db)
})

afterAll(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await db?.destroy()
})

/** Every job ID any relay process added to BullMQ, as it reported (with repeats). */
const addedByRelays: string[] = []

interface RelayChild {
  child: ChildProcess
  exited: Promise<void>
  /** Batches this process reported adding. */
  batches: number
  /** The process has started its relay. */
  ready: boolean
}

function startRelayProcess(): RelayChild {
  const child = spawn(process.execPath, ['--import', 'tsx', relayFile], {
    env: {
      ...process.env,
      PG_URL: postgres.primary.url,
      REDIS_PORT: String(env.server.port),
      BATCH_SIZE: '50',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  children.push(child)
  let buffer = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString()
    const lines = buffer.split('\n')
    buffer = lines.pop() ?? ''
    for (const line of lines) {
      if (line === 'READY') relay.ready = true
      if (!line.startsWith('ADDED ')) continue
      addedByRelays.push(...line.slice(6).split(' '))
      relay.batches++
    }
  })
  const relay: RelayChild = {
    child,
    exited: new Promise((resolve) => child.on('exit', () => resolve())),
    batches: 0,
    ready: false,
  }
  return relay
}

/** The job every outbox test enqueues: ship an order. */
function shipJob(
  queue: string,
  handler: () => void = () => {},
  options: { removeOnComplete?: boolean } = {},
) {
  return defineJob({ name: 'ship', queue, schema: z.object({ orderId: z.number() }), handler, ...options })
}

describe('transactional outbox', () => {
  it('writes nothing when the transaction rolls back, and refuses invalid payloads inside it', async () => {
    const queue = uniqueName('outbox-small-')
    const job = shipJob(queue)
    const outbox = createOutbox()
    await expect(
      db.transaction().execute(async (trx) => {
        await trx.insertInto('orders').values({ id: 1, total: 10 }).execute()
        await outbox.enqueue(trx, job, { orderId: 1 })
        throw new Error('business rule failed')
      }),
    ).rejects.toThrow('business rule failed')
    const bad = await db
      .transaction()
      .execute((trx) => outbox.enqueue(trx, job, { orderId: 'x' as unknown as number }))
      .catch((e: unknown) => e)
    expect(bad).toBeInstanceOf(InvalidPayloadError)
    // Options BullMQ would refuse are refused here: a row the relay cannot add would stall it.
    const badOptions = await db
      .transaction()
      .execute((trx) => outbox.enqueue(trx, job, { orderId: 3 }, { priority: 2 ** 22 }))
      .catch((e: unknown) => e)
    expect(badOptions).toBeInstanceOf(JobsOptionsError)
    const committed = await db.transaction().execute(async (trx) => {
      await trx.insertInto('orders').values({ id: 2, total: 20 }).execute()
      return outbox.enqueue(trx, job, { orderId: 2 }, { delayMs: 60_000 })
    })
    const relay = createOutboxRelay({ db, connection: redis })
    expect(await relay.relayOnce()).toBe(1)
    expect(await relay.relayOnce()).toBe(0)
    const bull = new Queue(queue, { connection: redis, prefix: '{jobs}' })
    const found = await bull.getJob(committed.jobId)
    expect(found?.data).toEqual({ orderId: 2 })
    // The delay counts from the enqueue, and is kept through the relay.
    expect(await found?.getState()).toBe('delayed')
    expect(await bull.count()).toBe(1)
    await relay.close()
    // Stopped means stopped: its queues are closed, nothing reopens them.
    await expect(relay.relayOnce()).rejects.toBeInstanceOf(JobsClosedError)
    expect(() => relay.start()).toThrow(JobsClosedError)
    // close() is idempotent; the deprecated stop() is the same call.
    await relay.close()
    await relay.stop()
    expect(() => createOutboxRelay({ db, connection: redis, batchSize: 0 })).toThrow(JobsOptionsError)
    await bull.obliterate({ force: true })
    await bull.close()
  })

  it('a batch added to BullMQ whose transaction then fails is added again without duplicates, even after its jobs ran and were removed', async () => {
    const queue = uniqueName('outbox-commit-fault-')
    let runs = 0
    // The harshest retention: a finished job is gone at once, so its ID no longer deduplicates.
    const job = shipJob(queue, () => void runs++, { removeOnComplete: true })
    const outbox = createOutbox()
    await db.transaction().execute((trx) =>
      outbox.enqueueMany(
        trx,
        job,
        Array.from({ length: 30 }, (_, i) => ({ payload: { orderId: i } })),
      ),
    )
    // The DELETE fails twice (a sequence is not rolled back with the transaction): the relay has
    // already added the jobs to BullMQ each time, then its transaction aborts and the rows stay.
    await sql`create sequence outbox_fault_seq`.execute(db)
    await sql`create or replace function fail_outbox_delete() returns trigger language plpgsql as $$
      begin if nextval('outbox_fault_seq') <= 2 then raise exception 'injected fault'; end if; return null; end $$`.execute(
      db,
    )
    await sql`create trigger fail_outbox_delete before delete on scale_jobs_outbox
      for each statement execute function fail_outbox_delete()`.execute(db)
    const adds: number[] = []
    const relay = createOutboxRelay({
      db,
      connection: redis,
      batchSize: 100,
      onBatchAdded: ({ jobIds }) => adds.push(jobIds.length),
    })
    const bull = new Queue(queue, { connection: redis, prefix: '{jobs}' })
    await expect(relay.relayOnce()).rejects.toMatchObject({ code: 'E_JOBS_OUTBOX_RELAY' })
    expect(await bull.getWaitingCount()).toBe(30)
    // The jobs run, and removeOnComplete deletes them, before the relay comes back.
    const worker = createWorker({
      connection: redis,
      jobs: [job],
      concurrency: 10,
      shutdown: { signals: [] },
    })
    await waitFor(
      'the first adds ran and were removed',
      async () => runs === 30 && (await bull.count()) === 0,
      {
        timeoutMs: 30_000,
      },
    )
    await worker.close()
    // With no worker running, anything added again would sit in the queue.
    await expect(relay.relayOnce()).rejects.toMatchObject({ code: 'E_JOBS_OUTBOX_RELAY' })
    expect(await bull.count()).toBe(0)
    expect(await relay.relayOnce()).toBe(30)
    await sql`drop trigger fail_outbox_delete on scale_jobs_outbox`.execute(db)
    // The batch was really added three times (control), and made 30 jobs that ran once each.
    expect(adds).toEqual([30, 30, 30])
    expect(await bull.count()).toBe(0)
    expect(await redis.llen(`{jobs}:${queue}:wait`)).toBe(0)
    expect(runs).toBe(30)
    // Committed batches leave no dedup markers behind.
    expect(await redis.keys(`{jobs}:${queue}:de:*`)).toEqual([])
    await relay.close()
    await bull.obliterate({ force: true })
    await bull.close()
  })

  it('10,000 enqueues, a random third rolled back, relays SIGKILLed along the way: exactly the committed jobs, 0 missing, 0 extra', async () => {
    const queue = uniqueName('outbox-big-')
    const job = shipJob(queue)
    const outbox = createOutbox()
    const total = 10_000
    const perTransaction = 50
    const committed = new Set<string>()
    let rolledBack = 0

    // A slow DELETE (a database fault injected with a trigger) widens the window between a
    // batch's add to BullMQ and its commit, so the SIGKILLs land inside it and the re-add path runs.
    await sql`create or replace function slow_outbox_delete() returns trigger language plpgsql as $$
      begin perform pg_sleep(0.03); return null; end $$`.execute(db)
    await sql`create trigger slow_outbox_delete before delete on scale_jobs_outbox
      for each statement execute function slow_outbox_delete()`.execute(db)

    // Two relay processes at once (they share the work through SKIP LOCKED); a chaos loop kills
    // one with SIGKILL and starts a new one, six times. The writers advance in seven phases, each
    // waiting for the next kill, so the kills are spread along the way whatever the machine's speed.
    const plannedKills = 6
    const relays = [startRelayProcess(), startRelayProcess()]
    let kills = 0
    const chaos = (async () => {
      while (kills < plannedKills) {
        const victim = kills % 2
        // Kill a relay once it is moving batches (or, if the other took all the work, once it
        // has been up a while), at a random point of its work.
        await waitFor('relay started', async () => relays[victim]?.ready === true, {
          timeoutMs: 60_000,
          intervalMs: 5,
        })
        const upSince = Date.now()
        await waitFor(
          'relay at work',
          async () => (relays[victim]?.batches ?? 0) >= 1 || Date.now() - upSince > 2_000,
          {
            timeoutMs: 60_000,
            intervalMs: 5,
          },
        )
        await sleep(Math.random() * 150)
        relays[victim]?.child.kill('SIGKILL')
        await relays[victim]?.exited
        kills++
        relays[victim] = startRelayProcess()
      }
    })()

    let orderId = 0
    const transactions = total / perTransaction
    let next = 0
    const writer = async () => {
      while (next < transactions) {
        const phase = Math.floor((next * (plannedKills + 1)) / transactions)
        if (kills < phase) {
          await sleep(20)
          continue
        }
        next++
        const ids = Array.from({ length: perTransaction }, () => ++orderId)
        const rollback = Math.random() < 1 / 3
        try {
          const result = await db.transaction().execute(async (trx) => {
            await trx
              .insertInto('orders')
              .values(ids.map((id) => ({ id: id + 1000, total: id })))
              .execute()
            const enqueued = await outbox.enqueueMany(
              trx,
              job,
              ids.map((id) => ({ payload: { orderId: id } })),
            )
            // Commits land out of ID order across writers, as they do in production.
            await sleep(Math.random() * 15)
            if (rollback) throw new Error('rollback')
            return enqueued
          })
          for (const r of result) committed.add(r.jobId)
        } catch (error) {
          if ((error as Error).message !== 'rollback') throw error
          rolledBack++
        }
      }
    }
    await Promise.all(Array.from({ length: 8 }, writer))
    await chaos

    // A last, undisturbed relay drains what is left.
    await waitFor(
      'outbox drained',
      async () =>
        Number(
          (await sql<{ n: string }>`select count(*) as n from scale_jobs_outbox`.execute(db)).rows[0]?.n,
        ) === 0,
      { timeoutMs: 120_000 },
    )
    for (const relay of relays) relay.child.kill('SIGTERM')
    await Promise.all(relays.map((r) => r.exited))
    await sql`drop trigger slow_outbox_delete on scale_jobs_outbox`.execute(db)

    const bull = new Queue(queue, { connection: redis, prefix: '{jobs}' })
    const waitList = await redis.lrange(`{jobs}:${queue}:wait`, 0, -1)
    const inBull = new Set(waitList)
    const missing = [...committed].filter((id) => !inBull.has(id))
    const extra = [...inBull].filter((id) => !committed.has(id))
    const duplicateEntries = waitList.length - inBull.size
    // Every committed job was added by a relay (a killed relay's uncommitted adds made again by another).
    const added = new Set(addedByRelays)
    const committedOrders = Number(
      (await sql<{ n: string }>`select count(*) as n from orders where id > 1000`.execute(db)).rows[0]?.n,
    )
    expect(rolledBack).toBeGreaterThan(0)
    expect(committed.size).toBe(committedOrders)
    expect(committed.size).toBe((transactions - rolledBack) * perTransaction)
    expect(missing).toEqual([])
    expect(extra).toEqual([])
    expect(duplicateEntries).toBe(0)
    expect([...committed].filter((id) => !added.has(id))).toEqual([])
    expect(await bull.count()).toBe(committed.size)
    expect(kills).toBe(plannedKills)
    // Payloads arrive intact.
    const sample = await bull.getJob([...committed][0] as string)
    expect(sample?.data).toHaveProperty('orderId')

    // And the relayed jobs run.
    let ran = 0
    const worker = createWorker({
      connection: redis,
      jobs: [shipJob(queue, () => void ran++)],
      concurrency: 50,
      shutdown: { signals: [] },
    })
    await waitFor('relayed jobs completed', async () => (await bull.getCompletedCount()) === committed.size, {
      timeoutMs: 120_000,
    })
    expect(ran).toBe(committed.size)
    await worker.close()
    await bull.obliterate({ force: true })
    await bull.close()
  })
})
