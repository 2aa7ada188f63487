import { type RedisCluster, startRedisCluster, waitFor } from '@scale/testkit'
import { uniqueName } from '@scale/testkit/vitest'
import { Cluster } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createDeadLetterQueue,
  createProducer,
  createScalingSignal,
  createWorker,
  defineJob,
  InvalidPayloadError,
  JobsOptionsError,
} from '../src/index.js'

let cluster: RedisCluster
let client: Cluster

beforeAll(async () => {
  cluster = await startRedisCluster()
  await cluster.waitForHealthy()
  client = new Cluster(cluster.startupNodes, { redisOptions: { maxRetriesPerRequest: null } })
  client.on('error', () => {})
})

afterAll(async () => {
  client?.disconnect()
  await cluster?.stop()
})

describe('Redis Cluster', () => {
  it('refuses a prefix without a hash tag', () => {
    expect(() => createProducer({ connection: client, keyPrefix: 'jobs' })).toThrow(JobsOptionsError)
    expect(() => createProducer({ connection: client, keyPrefix: 'jobs' })).toThrow(/hash tag/)
  })

  it('enqueues, runs, retries, dead-letters, redrives and signals on a cluster', async () => {
    const queue = uniqueName('cluster-')
    const prefix = `{${queue}}`
    let fail = true
    const ran: number[] = []
    const job = defineJob({
      name: 'c',
      queue,
      schema: z.object({ n: z.number() }),
      retry: { attempts: 2, baseDelayMs: 20 },
      handler: ({ n }) => {
        if (n === 13 && fail) throw new Error('unlucky')
        ran.push(n)
      },
    })
    const producer = createProducer({ connection: client, keyPrefix: prefix })
    await expect(producer.enqueue(job, { n: 'x' as unknown as number })).rejects.toBeInstanceOf(
      InvalidPayloadError,
    )
    await producer.enqueueMany(
      job,
      Array.from({ length: 50 }, (_, n) => ({ payload: { n } })),
    )
    const signal = createScalingSignal({ connection: client, queue, keyPrefix: prefix })
    expect((await signal.read()).backlog).toBe(50)
    const worker = createWorker({
      connection: client,
      keyPrefix: prefix,
      jobs: [job],
      concurrency: 5,
      shutdown: { signals: [] },
    })
    const dlq = createDeadLetterQueue({ connection: client, queue, keyPrefix: prefix })
    await waitFor(
      '49 ran and one dead-lettered',
      async () => ran.length === 49 && (await dlq.count()) === 1,
      {
        timeoutMs: 60_000,
      },
    )
    const [entry] = await dlq.list()
    expect(entry?.payload).toEqual({ n: 13 })
    expect(entry?.attemptsMade).toBe(2)
    fail = false
    await dlq.redrive()
    await waitFor('redriven job ran', async () => ran.includes(13), { timeoutMs: 30_000 })
    expect(await dlq.count()).toBe(0)
    await worker.close()
    await dlq.close()
    await signal.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })
})
