import { waitFor } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createProducer, createWorker, defineJob, JobsOptionsError } from '../src/index.js'
import { jobsClient } from './helpers.js'

const env = useRedis({ connect: jobsClient })

describe('enqueue options', () => {
  it('idempotency key: enqueueing twice makes one job; another key makes another', async () => {
    const queue = uniqueName('idem-')
    const job = defineJob({
      name: 'welcome',
      queue,
      schema: z.object({ userId: z.string() }),
      handler: () => {},
    })
    const producer = createProducer({ connection: env.redis })
    const first = await producer.enqueue(job, { userId: 'u1' }, { idempotencyKey: 'signup-u1' })
    const second = await producer.enqueue(job, { userId: 'u1' }, { idempotencyKey: 'signup-u1' })
    const keyWithColon = await producer.enqueue(job, { userId: 'u1' }, { idempotencyKey: 'order:42 / 7' })
    const again = await producer.enqueue(job, { userId: 'u1' }, { idempotencyKey: 'order:42 / 7' })
    expect(second.id).toBe(first.id)
    expect(again.id).toBe(keyWithColon.id)
    expect(await producer.queue(queue).getWaitingCount()).toBe(2)
    // Control: without a key, two enqueues are two jobs.
    await producer.enqueue(job, { userId: 'u1' })
    await producer.enqueue(job, { userId: 'u1' })
    expect(await producer.queue(queue).getWaitingCount()).toBe(4)
    // Concurrent duplicates, as from a retried HTTP request: still one job.
    const ids = await Promise.all(
      Array.from({ length: 20 }, () => producer.enqueue(job, { userId: 'u2' }, { idempotencyKey: 'burst' })),
    )
    expect(new Set(ids.map((r) => r.id)).size).toBe(1)
    expect(await producer.queue(queue).getWaitingCount()).toBe(5)
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('delays and priorities pass through to BullMQ', async () => {
    const queue = uniqueName('prio-')
    const order: string[] = []
    const job = defineJob({
      name: 'p',
      queue,
      schema: z.object({ label: z.string() }),
      handler: ({ label }) => {
        order.push(label)
      },
    })
    const producer = createProducer({ connection: env.redis })
    // What BullMQ would refuse is a typed error before anything is written.
    await expect(producer.enqueue(job, { label: 'x' }, { priority: 1.5 })).rejects.toBeInstanceOf(
      JobsOptionsError,
    )
    await expect(producer.enqueue(job, { label: 'x' }, { delayMs: -1 })).rejects.toBeInstanceOf(
      JobsOptionsError,
    )
    expect(await producer.queue(queue).count()).toBe(0)
    const delayed = await producer.enqueue(job, { label: 'delayed' }, { delayMs: 60_000 })
    expect(await producer.queue(queue).getJobState(delayed.id)).toBe('delayed')
    await producer.enqueue(job, { label: 'low' }, { priority: 10 })
    await producer.enqueue(job, { label: 'high' }, { priority: 1 })
    await producer.enqueue(job, { label: 'mid' }, { priority: 5 })
    // BullMQ's rule, as documented: a job without a priority runs before every prioritized one.
    await producer.enqueue(job, { label: 'none' })
    const worker = createWorker({
      connection: env.redis,
      jobs: [job],
      concurrency: 1,
      shutdown: { signals: [] },
    })
    await waitFor('four ran', async () => order.length === 4, { timeoutMs: 30_000 })
    expect(order).toEqual(['none', 'high', 'mid', 'low'])
    expect(await producer.queue(queue).getJobState(delayed.id)).toBe('delayed')
    await worker.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('repeatable jobs run on their schedule until unscheduled', async () => {
    const queue = uniqueName('repeat-')
    let runs = 0
    const job = defineJob({
      name: 'tick',
      queue,
      schema: z.object({ n: z.number() }),
      handler: () => {
        runs++
      },
    })
    const producer = createProducer({ connection: env.redis })
    await expect(
      producer.schedule(job, 'bad', { everyMs: 100 }, { n: 'x' as unknown as number }),
    ).rejects.toThrow(/invalid payload/)
    await producer.schedule(job, 'every-200ms', { everyMs: 200 }, { n: 1 })
    const worker = createWorker({ connection: env.redis, jobs: [job], shutdown: { signals: [] } })
    await waitFor('three ticks', async () => runs >= 3, { timeoutMs: 30_000 })
    expect(await producer.unschedule(job, 'every-200ms')).toBe(true)
    await worker.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })
})
