import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { waitFor } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import { afterAll, describe, expect, it } from 'vitest'
import { createProducer, createWorker } from '../src/index.js'
import { recordingJob } from './fixtures/recording-job.js'
import { jobsClient } from './helpers.js'

const workerFile = fileURLToPath(new URL('./fixtures/worker-process.ts', import.meta.url))

const env = useRedis({ connect: jobsClient })
const children: ChildProcess[] = []

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
})

interface Child {
  process: ChildProcess
  lines: string[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

function startWorkerProcess(env: Record<string, string>): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', workerFile], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  const lines: string[] = []
  let buffer = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString()
    const parts = buffer.split('\n')
    buffer = parts.pop() ?? ''
    lines.push(...parts)
  })
  child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  )
  return { process: child, lines, exited }
}

async function runCounts(queue: string): Promise<number[]> {
  return Object.values(await env.redis.hgetall(`test:${queue}:runs`)).map(Number)
}

describe('worker processes that die', () => {
  it('SIGKILL in the middle of 1,000 jobs: every job completes, none is lost', async () => {
    const queue = uniqueName('sigkill-')
    const job = recordingJob(queue, env.redis, 20, 60)
    const producer = createProducer({ connection: env.redis })
    const total = 1_000
    await producer.enqueueMany(
      job,
      Array.from({ length: total }, (_, n) => ({ payload: { n } })),
    )
    const child = startWorkerProcess({
      REDIS_PORT: String(env.server.port),
      QUEUE: queue,
      CONCURRENCY: '20',
      MIN_MS: '20',
      MAX_MS: '60',
      LOCK_MS: '3000',
      STALLED_MS: '1000',
    })
    await waitFor(
      'the worker process is a third through',
      async () => (await env.redis.scard(`test:${queue}:done`)) >= 300,
      {
        timeoutMs: 90_000,
        intervalMs: 20,
      },
    )
    const activeAtKill = await producer.queue(queue).getActiveCount()
    child.process.kill('SIGKILL')
    const exit = await child.exited
    expect(exit.signal).toBe('SIGKILL')
    const doneAtKill = await env.redis.scard(`test:${queue}:done`)
    expect(doneAtKill).toBeLessThan(total)

    // A surviving worker: its stalled checker finds the dead worker's jobs once their locks expire.
    const survivor = createWorker({
      connection: env.redis,
      jobs: [recordingJob(queue, env.redis, 1, 5)],
      concurrency: 20,
      lockDurationMs: 3_000,
      stalledIntervalMs: 1_000,
      shutdown: { signals: [] },
    })
    await waitFor(
      'all 1,000 jobs completed',
      async () => (await producer.queue(queue).getCompletedCount()) === total,
      {
        timeoutMs: 90_000,
      },
    )
    const done = await env.redis.scard(`test:${queue}:done`)
    const runs = await runCounts(queue)
    const ranTwice = runs.filter((count) => count > 1).length
    expect(done).toBe(total)
    expect(runs).toHaveLength(total)
    expect(await producer.queue(queue).getFailedCount()).toBe(0)
    expect(await producer.queue(queue).getActiveCount()).toBe(0)
    expect(await producer.queue(queue).getWaitingCount()).toBe(0)
    // Only jobs that were running at the kill may run twice.
    expect(ranTwice).toBeLessThanOrEqual(activeAtKill + 20)
    await survivor.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('SIGTERM during 200 in-flight jobs: exits by the deadline and loses 0 jobs', async () => {
    const queue = uniqueName('sigterm-')
    const job = recordingJob(queue, env.redis, 0, 0)
    const producer = createProducer({ connection: env.redis })
    const total = 200
    await producer.enqueueMany(
      job,
      Array.from({ length: total }, (_, n) => ({ payload: { n } })),
    )
    const deadlineMs = 5_000
    const child = startWorkerProcess({
      REDIS_PORT: String(env.server.port),
      QUEUE: queue,
      CONCURRENCY: String(total),
      // Handler times from 0.5 s to a minute: a few finish before the deadline, most run far past
      // it, so a shutdown that waited for its jobs would still be running long after the deadline.
      MIN_MS: '500',
      MAX_MS: '60000',
      // Every job waits for the go key before its clock starts, so none finishes before SIGTERM.
      GATED: '1',
      DEADLINE_MS: String(deadlineMs),
    })
    await waitFor(
      'all 200 jobs in flight',
      async () => Number(await env.redis.hlen(`test:${queue}:runs`)) === total,
      {
        timeoutMs: 90_000,
        intervalMs: 20,
      },
    )
    const goAt = Date.now()
    await env.redis.set(`test:${queue}:go`, '1')
    await waitFor(
      'every handler started its clock',
      async () => Number(await env.redis.hlen(`test:${queue}:planned`)) === total,
      { timeoutMs: 30_000, intervalMs: 5 },
    )
    child.process.kill('SIGTERM')
    const exit = await child.exited
    const exitedAfterGoMs = Date.now() - goAt
    const slowestHandlerMs = Math.max(
      ...Object.values(await env.redis.hgetall(`test:${queue}:planned`)).map(Number),
    )
    expect(exit).toEqual({ code: 0, signal: null })
    // No clock threshold: the process is gone before its slowest handler could have finished
    // (it started after goAt), which a shutdown that ignored the deadline could not manage.
    expect(slowestHandlerMs).toBeGreaterThan(4 * deadlineMs)
    expect(exitedAfterGoMs).toBeLessThan(slowestHandlerMs)
    const shutdown = child.lines
      .map((line) => JSON.parse(line.startsWith('{') ? line : 'null'))
      .find((e) => e?.type === 'shutdown')
    expect(shutdown).toBeDefined()
    // It gave jobs the deadline, then handed back those still running rather than waiting them out.
    expect(shutdown.returned).toBeGreaterThan(0)
    expect(shutdown.finished + shutdown.returned).toBe(total)
    // Jobs were given until the hand-back point (the deadline less a fifth, at most 1 s).
    expect(shutdown.elapsedMs).toBeGreaterThanOrEqual(deadlineMs - Math.min(1_000, deadlineMs / 5) - 50)
    const doneBySigterm = await env.redis.scard(`test:${queue}:done`)
    // A handler whose last step was already under way when the deadline hit may still land its
    // side effect after its job was handed back (at-least-once): never fewer than `finished`.
    expect(doneBySigterm).toBeGreaterThanOrEqual(shutdown.finished)
    // Returned jobs are back in the queue right away, not stuck as active until a stall check.
    expect(await producer.queue(queue).getActiveCount()).toBe(0)
    expect(await producer.queue(queue).getWaitingCount()).toBe(shutdown.returned)

    const survivor = createWorker({
      connection: env.redis,
      jobs: [recordingJob(queue, env.redis, 0, 0)],
      concurrency: 50,
      shutdown: { signals: [] },
    })
    await waitFor(
      'all 200 completed',
      async () => (await producer.queue(queue).getCompletedCount()) === total,
      {
        timeoutMs: 60_000,
      },
    )
    const done = await env.redis.scard(`test:${queue}:done`)
    expect(done).toBe(total)
    expect(await producer.queue(queue).getFailedCount()).toBe(0)
    await survivor.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })
})
