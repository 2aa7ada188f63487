import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type RedisServer, startRedis, waitFor } from '@scale/testkit'
import { uniqueName } from '@scale/testkit/vitest'
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createProducer,
  defineJob,
  EnqueueError,
  EnqueueTimeoutError,
  JobsError,
  JobsOptionsError,
  type Producer,
} from '../src/index.js'
import { connect } from './helpers.js'

const DEADLINE_MS = 400
const CALLS = 20

let server: RedisServer | undefined
const clients: Redis[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect()
  server?.resume()
  await server?.dispose()
  server = undefined
})

function emailJob() {
  return defineJob({
    name: 'email',
    queue: uniqueName('deadline-'),
    schema: z.object({ to: z.string() }),
    handler: () => {},
  })
}

/**
 * Starts `CALLS` enqueues and counts how they settle. Every one must settle (0 hung promises);
 * `waitFor`'s bound is only a watchdog far beyond the deadline, not a timing assertion.
 */
async function enqueueAll(producer: Producer, job: ReturnType<typeof emailJob>) {
  const outcomes: unknown[] = []
  for (let i = 0; i < CALLS; i++) {
    producer.enqueue(job, { to: `u${i}` }, { idempotencyKey: `mail-${i}` }).then(
      (value) => outcomes.push(value),
      (error: unknown) => outcomes.push(error),
    )
  }
  await waitFor('every enqueue to settle', () => outcomes.length === CALLS, { timeoutMs: 30_000 })
  return outcomes
}

/**
 * A step that is not under test (a warm-up on a new connection, a retry after Redis came back) but
 * runs under the short deadline: retried while it times out, so a slow machine (a connection set
 * up, scripts loaded, a reconnect back-off) does not fail the test. Idempotency keys make retries safe.
 */
async function untilEnqueued<T>(attempt: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt()
    } catch (error) {
      if (!(error instanceof EnqueueTimeoutError) || tries === 50) throw error
    }
  }
}

describe('enqueue never hangs', () => {
  it('Redis killed: with the worker-style connection (retry forever) every enqueue rejects with EnqueueTimeoutError', async () => {
    server = await startRedis()
    const redis = connect(server.port) // maxRetriesPerRequest: null, the worst case for a producer
    clients.push(redis)
    const job = emailJob()
    const producer = createProducer({ connection: redis, enqueueTimeoutMs: DEADLINE_MS })
    await untilEnqueued(() => producer.enqueue(job, { to: 'warm-up' }, { idempotencyKey: 'warm-up' }))
    await server.kill()

    const outcomes = await enqueueAll(producer, job)
    expect(outcomes.filter((o) => o instanceof EnqueueTimeoutError)).toHaveLength(CALLS)
    const first = outcomes[0] as EnqueueTimeoutError
    expect(first.code).toBe('E_JOBS_ENQUEUE_TIMEOUT')
    expect(first.timeoutMs).toBe(DEADLINE_MS)
    expect(first.message).toMatch(/idempotency key/)

    // Redis back (empty: the kit persists nothing): the adds queued in ioredis land late, and
    // retrying with the same keys makes no duplicate.
    await server.start()
    for (let i = 0; i < CALLS; i++)
      await untilEnqueued(() => producer.enqueue(job, { to: `u${i}` }, { idempotencyKey: `mail-${i}` }))
    expect(await producer.queue(job.queue).getWaitingCount()).toBe(CALLS)
    await producer.close()
  })

  it('Redis killed: with the fail-fast producer connection from the README every enqueue rejects with a typed error', async () => {
    server = await startRedis()
    const redis = new Redis({
      host: '127.0.0.1',
      port: server.port,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
    })
    redis.on('error', () => {})
    clients.push(redis)
    const job = emailJob()
    const producer = createProducer({ connection: redis, enqueueTimeoutMs: DEADLINE_MS })
    await untilEnqueued(() => producer.enqueue(job, { to: 'warm-up' }, { idempotencyKey: 'warm-up' }))
    await server.kill()
    const outcomes = await enqueueAll(producer, job)
    // Refused at once by ioredis (EnqueueError) or, mid-reconnect, by the deadline: both typed.
    expect(
      outcomes.filter((o) => o instanceof EnqueueError || o instanceof EnqueueTimeoutError),
    ).toHaveLength(CALLS)
    await producer.close()
  })

  it('Redis frozen (SIGSTOP): every enqueue rejects with EnqueueTimeoutError, and close() returns', async () => {
    server = await startRedis()
    const redis = connect(server.port)
    clients.push(redis)
    const job = emailJob()
    const producer = createProducer({ connection: redis, enqueueTimeoutMs: DEADLINE_MS })
    await untilEnqueued(() => producer.enqueue(job, { to: 'warm-up' }, { idempotencyKey: 'warm-up' }))
    server.pause()

    const outcomes = await enqueueAll(producer, job)
    expect(outcomes.filter((o) => o instanceof EnqueueTimeoutError)).toHaveLength(CALLS)
    const many = await producer
      .enqueueMany(job, [{ payload: { to: 'a' } }, { payload: { to: 'b' } }])
      .catch((e: unknown) => e)
    expect(many).toBeInstanceOf(EnqueueTimeoutError)
    // close() is bounded too: it does not wait on the frozen server.
    let closed = false
    void producer.close().then(() => {
      closed = true
    })
    await waitFor('close to return', () => closed, { timeoutMs: 30_000 })
    server.resume()
  })

  it('a web request that enqueues while Redis is frozen gets its answer (503), not a hang', async () => {
    server = await startRedis()
    const redis = connect(server.port)
    clients.push(redis)
    const job = emailJob()
    const producer = createProducer({ connection: redis, enqueueTimeoutMs: DEADLINE_MS })
    const app = createServer((req, res) => {
      producer.enqueue(job, { to: req.url ?? '/' }).then(
        (enqueued) => res.writeHead(202).end(enqueued.id),
        (error: unknown) =>
          res.writeHead(error instanceof JobsError ? 503 : 500).end((error as JobsError).code ?? ''),
      )
    })
    app.listen(0, '127.0.0.1')
    await once(app, 'listening')
    const url = `http://127.0.0.1:${(app.address() as AddressInfo).port}/signup`
    try {
      await untilEnqueued(() => producer.enqueue(job, { to: 'warm-up' }, { idempotencyKey: 'warm-up' }))
      expect((await fetch(url)).status).toBe(202)
      server.pause()
      const statuses = await Promise.all(
        Array.from({ length: 5 }, async () => {
          const response = await fetch(url, { signal: AbortSignal.timeout(30_000) })
          return `${response.status} ${await response.text()}`
        }),
      )
      expect(statuses).toEqual(Array(5).fill('503 E_JOBS_ENQUEUE_TIMEOUT'))
    } finally {
      server.resume()
      app.close()
      await producer.close()
    }
  })

  it('refuses a deadline that is not above 0', () => {
    const redis = new Redis({ lazyConnect: true })
    expect(() => createProducer({ connection: redis, enqueueTimeoutMs: 0 })).toThrow(JobsOptionsError)
    redis.disconnect()
  })
})
