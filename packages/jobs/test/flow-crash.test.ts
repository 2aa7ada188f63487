import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { waitFor } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import { afterAll, describe, expect, it } from 'vitest'
import { createProducer, createWorker, flowJob } from '../src/index.js'
import { flowJobs } from './fixtures/flow-jobs.js'
import { jobsClient } from './helpers.js'

const workerFile = fileURLToPath(new URL('./fixtures/flow-worker-process.ts', import.meta.url))
const env = useRedis({ connect: jobsClient })
const processes: ChildProcess[] = []
afterAll(() => {
  for (const child of processes) if (child.exitCode === null) child.kill('SIGKILL')
})

describe('flows survive a killed worker', () => {
  it('a worker SIGKILLed mid-flow loses no child: the parent runs once, with every child result', async () => {
    const queue = uniqueName('album-')
    const { photo, album } = flowJobs(queue, env.redis)
    const total = 60
    const producer = createProducer({ connection: env.redis })
    const flow = await producer.enqueueFlow(
      flowJob(
        album,
        { photos: total },
        {
          children: Array.from({ length: total }, (_, n) => flowJob(photo, { n })),
        },
      ),
    )
    const child = spawn(process.execPath, ['--import', 'tsx', workerFile], {
      env: { ...process.env, QUEUE: queue, REDIS_PORT: String(env.server.port) },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    processes.push(child)
    const exited = once(child, 'exit')
    // Killed once a quarter of the children are done: others are mid-run, holding locks.
    await waitFor('a quarter done', async () => (await env.redis.scard(`test:${queue}:done`)) >= total / 4, {
      timeoutMs: 60_000,
    })
    child.kill('SIGKILL')
    await exited
    const doneAtKill = await env.redis.scard(`test:${queue}:done`)
    expect(doneAtKill).toBeLessThan(total)

    // A surviving worker recovers the dead one's children once their locks expire.
    const worker = createWorker({
      connection: env.redis,
      jobs: [photo, album],
      concurrency: 5,
      lockDurationMs: 1_500,
      stalledIntervalMs: 500,
    })
    await waitFor('the parent ran', async () => (await env.redis.llen(`test:${queue}:parent`)) > 0, {
      timeoutMs: 60_000,
    })
    const seen = (await env.redis.lrange(`test:${queue}:parent`, 0, -1)).map((v) => JSON.parse(v) as string[])
    expect(seen).toHaveLength(1) // the parent ran once
    expect(seen[0]).toEqual(Array.from({ length: total }, (_, n) => `photo-${n}`).sort())
    expect(await env.redis.scard(`test:${queue}:done`)).toBe(total)
    expect(await producer.queue(queue).getJobState(flow.id)).toBe('completed')
    await worker.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.queue(photo.queue).obliterate({ force: true })
    await producer.close()
  }, 120_000)
})
