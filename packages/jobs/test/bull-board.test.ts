import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { createBullBoard } from '@bull-board/api'
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter'
import { ExpressAdapter } from '@bull-board/express'
import { waitFor } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import express from 'express'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createDeadLetterQueue,
  createProducer,
  createWorker,
  defineJob,
  PermanentError,
} from '../src/index.js'
import { jobsClient } from './helpers.js'

const env = useRedis({ connect: jobsClient })

interface BoardQueue {
  name: string
  counts: Record<string, number>
  jobs: Array<{ id: string; name: string; data: unknown; failedReason?: string; progress?: unknown }>
}

describe('bull-board over the package’s queues', () => {
  it('mounts on Express and shows the jobs, failures and progress of a queue (they are BullMQ queues)', async () => {
    const queue = uniqueName('board-')
    const job = defineJob({
      name: 'thumbnail',
      queue,
      schema: z.object({ photoId: z.string() }),
      async handler({ photoId }, ctx) {
        await ctx.progress(100)
        if (photoId === 'gone') throw new PermanentError('photo deleted')
      },
    })
    const producer = createProducer({ connection: env.redis })
    const dlq = createDeadLetterQueue({ connection: env.redis, queue })
    await producer.enqueue(job, { photoId: 'p1' })
    await producer.enqueue(job, { photoId: 'gone' })
    await producer.enqueue(job, { photoId: 'later' }, { delayMs: 60_000 })
    const worker = createWorker({ connection: env.redis, jobs: [job] })
    await waitFor(
      'one completed, one dead-lettered',
      async () => (await dlq.count()) === 1 && (await producer.queue(queue).getCompletedCount()) === 1,
    )

    // The README's snippet: the producer's queues are what bull-board adapts.
    const serverAdapter = new ExpressAdapter()
    serverAdapter.setBasePath('/admin/queues')
    createBullBoard({ queues: [new BullMQAdapter(producer.queue(queue))], serverAdapter })
    const app = express()
    app.use('/admin/queues', serverAdapter.getRouter())
    const server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin/queues`
    try {
      expect((await fetch(base)).status).toBe(200) // the UI page
      const read = async (status: string) => {
        const response = await fetch(`${base}/api/queues?activeQueue=${queue}&status=${status}&page=1`)
        const body = (await response.json()) as { queues: BoardQueue[] }
        return body.queues.find((q) => q.name === queue) as BoardQueue
      }
      const failed = await read('failed')
      expect(failed.counts).toMatchObject({ completed: 1, failed: 1, delayed: 1 })
      expect(failed.jobs.map((j) => [j.name, j.data, j.failedReason])).toEqual([
        ['thumbnail', { photoId: 'gone' }, expect.stringMatching(/photo deleted/)],
      ])
      const completed = await read('completed')
      expect(completed.jobs.map((j) => [j.data, j.progress])).toEqual([[{ photoId: 'p1' }, 100]])
    } finally {
      server.close()
      await worker.close()
      await dlq.close()
      await producer.queue(queue).obliterate({ force: true })
      await producer.close()
    }
  })
})
