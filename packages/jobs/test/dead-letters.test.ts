import { waitFor } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import { Worker } from 'bullmq'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createDeadLetterQueue,
  createProducer,
  createWorker,
  defineJob,
  InvalidPayloadError,
  JobsOptionsError,
} from '../src/index.js'
import { connect, jobsClient } from './helpers.js'

const env = useRedis({ connect: jobsClient })

describe('dead letters', () => {
  it('keep any string error code (ETIMEDOUT), so filtering by it finds the entry', async () => {
    const queue = uniqueName('code-')
    const job = defineJob({
      name: 'call',
      queue,
      schema: z.object({ n: z.number() }),
      retry: { attempts: 1 },
      handler: ({ n }) => {
        const error = new Error('upstream timed out') as Error & { code: unknown }
        // A numeric code is not a string code: not kept.
        error.code = n === 1 ? 'ETIMEDOUT' : 504
        throw error
      },
    })
    const producer = createProducer({ connection: env.redis })
    const worker = createWorker({ connection: env.redis, jobs: [job] })
    await producer.enqueue(job, { n: 1 })
    await producer.enqueue(job, { n: 2 })
    const dlq = createDeadLetterQueue({ connection: env.redis, queue })
    await waitFor('two dead letters', async () => (await dlq.count()) === 2)
    const timedOut = await dlq.list({ filter: { errorCode: 'ETIMEDOUT' } })
    expect(timedOut.map((e) => e.payload)).toEqual([{ n: 1 }])
    expect((await dlq.list()).map((e) => e.errorCode).sort()).toEqual(['ETIMEDOUT', undefined])
    await worker.close()
    await dlq.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it("redrive checks a transform's output against the job's schema and reports the rejects; the entry stays", async () => {
    const queue = uniqueName('redrive-')
    const ran: unknown[] = []
    const job = defineJob({
      name: 'resize',
      queue,
      schema: z.object({ width: z.number().int().positive() }),
      retry: { attempts: 1 },
      handler: ({ width }) => {
        if (width < 100) throw new Error('too small')
        ran.push(width)
      },
    })
    const producer = createProducer({ connection: env.redis })
    const worker = createWorker({ connection: env.redis, jobs: [job] })
    for (const width of [10, 20, 30]) await producer.enqueue(job, { width })
    const dlq = createDeadLetterQueue({ connection: env.redis, queue, jobs: [job] })
    await waitFor('three dead letters', async () => (await dlq.count()) === 3)

    // Without the definition a transform cannot be checked: refused before anything moves.
    const blind = createDeadLetterQueue({ connection: env.redis, queue })
    await expect(blind.redrive({ transform: (e) => e.payload })).rejects.toBeInstanceOf(JobsOptionsError)
    await blind.close()
    expect(await dlq.count()).toBe(3)

    const result = await dlq.redrive({
      ratePerSecond: 1_000,
      transform: (entry) => {
        const width = (entry.payload as { width: number }).width
        if (width === 10) return { width: '640' } // wrong type: would dead-letter again
        if (width === 20) return { width: 10n } // cannot be stored as JSON
        return { width: width * 10 }
      },
    })
    expect(result.redriven).toHaveLength(1)
    expect(result.rejected).toHaveLength(2)
    for (const reject of result.rejected) expect(reject.error).toBeInstanceOf(InvalidPayloadError)
    await waitFor('the fixed job ran', () => ran.length === 1)
    expect(ran).toEqual([300])
    // The rejected entries are still there, unchanged.
    expect((await dlq.list()).map((e) => e.payload)).toEqual([{ width: 10 }, { width: 20 }])
    await worker.close()
    await dlq.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('a job that stalled more than maxStalledCount times is dead-lettered (found by BullMQ’s deferred failure, not its message)', async () => {
    const queue = uniqueName('stall-')
    let handled = 0
    const job = defineJob({
      name: 'crashy',
      queue,
      schema: z.object({}),
      handler: () => {
        handled++
      },
    })
    const producer = createProducer({ connection: env.redis })
    const { id } = await producer.enqueue(job, {})
    // A worker that takes the job and dies: its lock is gone, the job still sits in `active`.
    const dyingRedis = connect(env.server.port)
    const dying = new Worker(queue, null, { connection: dyingRedis, prefix: '{jobs}', autorun: false })
    const taken = await dying.getNextJob('dead-token')
    expect(taken?.id).toBe(id)
    await env.redis.del(`{jobs}:${queue}:${id}:lock`)
    await dying.close(true)
    dyingRedis.disconnect()

    const dlq = createDeadLetterQueue({ connection: env.redis, queue })
    const worker = createWorker({
      connection: env.redis,
      jobs: [job],
      maxStalledCount: 0,
      stalledIntervalMs: 200,
    })
    await waitFor('the stalled job dead-lettered', async () => (await dlq.count()) === 1, {
      timeoutMs: 30_000,
    })
    const [entry] = await dlq.list()
    expect(entry?.id).toBe(id)
    expect(entry?.permanent).toBe(true)
    expect(handled).toBe(0)
    await worker.close()
    await dlq.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })
})
