import { waitFor } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createDeadLetterQueue,
  createProducer,
  createWorker,
  defineJob,
  flowJob,
  JobCancelledError,
  JobTimeoutError,
  type WorkerEvent,
} from '../src/index.js'
import { jobsClient, sleep } from './helpers.js'

const env = useRedis({ connect: jobsClient })

/** Resolves when `signal` aborts; never otherwise. */
const aborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))

describe('worker features on real Redis', () => {
  it('per-job timeout: the signal is aborted with JobTimeoutError and the attempt fails with it (retried, then dead-lettered)', async () => {
    const queue = uniqueName('timeout-')
    const reasons: unknown[] = []
    let fastRuns = 0
    const slow = defineJob({
      name: 'slow',
      queue,
      schema: z.object({ honour: z.boolean() }),
      timeoutMs: 150,
      retry: { attempts: 2, baseDelayMs: 10 },
      async handler({ honour }, { signal }) {
        if (honour) {
          await aborted(signal)
          reasons.push(signal.reason)
          return
        }
        await sleep(5_000) // ignores its signal: the attempt fails at the timeout all the same
      },
    })
    const fast = defineJob({
      name: 'fast',
      queue,
      schema: z.object({}),
      timeoutMs: 10_000,
      handler: () => {
        fastRuns++
      },
    })
    const producer = createProducer({ connection: env.redis })
    const dlq = createDeadLetterQueue({ connection: env.redis, queue })
    const worker = createWorker({ connection: env.redis, jobs: [slow, fast], concurrency: 4 })
    await producer.enqueue(slow, { honour: true })
    await producer.enqueue(slow, { honour: false })
    await producer.enqueue(fast, {})
    await waitFor('both slow jobs dead-lettered', async () => (await dlq.count()) === 2, {
      timeoutMs: 30_000,
    })
    const entries = await dlq.list()
    expect(entries.map((e) => e.errorCode)).toEqual(['E_JOBS_TIMEOUT', 'E_JOBS_TIMEOUT'])
    expect(entries.map((e) => e.attemptsMade)).toEqual([2, 2])
    expect(reasons).toHaveLength(2)
    for (const reason of reasons) expect(reason).toBeInstanceOf(JobTimeoutError)
    expect(fastRuns).toBe(1) // control: a job within its timeout completes
    await worker.close()
    await dlq.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('rate limiter: at most `max` jobs start per window, across two workers of the queue', async () => {
    const queue = uniqueName('limit-')
    let ran = 0
    const job = defineJob({
      name: 'call-api',
      queue,
      schema: z.object({ n: z.number() }),
      handler: () => {
        ran++
      },
    })
    const producer = createProducer({ connection: env.redis })
    await producer.enqueueMany(
      job,
      Array.from({ length: 12 }, (_, n) => ({ payload: { n } })),
    )
    const limiter = { max: 4, durationMs: 1_000 }
    const workers = [1, 2].map(() =>
      createWorker({ connection: env.redis, jobs: [job], concurrency: 10, limiter }),
    )
    await waitFor('all ran', () => ran === 12, { timeoutMs: 30_000 })
    // When BullMQ activated each job (stamped by the worker as it asks Redis for the next job),
    // not when the handler got to run, which a busy machine delays by an arbitrary amount.
    const completed = await producer.queue(queue).getJobs(['completed'])
    const starts = completed.map((j) => j.processedOn as number).sort((a, b) => a - b)
    expect(starts).toHaveLength(12)
    // BullMQ's windows are fixed: one opens with the first job after the previous one expired. So
    // the (k·max)-th job cannot start before k windows have passed since the first one. Load can
    // only widen the gaps; the slack covers the stamp being taken just before the Redis call.
    const first = starts[0] as number
    for (const k of [1, 2]) {
      expect((starts[k * limiter.max] as number) - first).toBeGreaterThanOrEqual(k * limiter.durationMs - 150)
    }
    await Promise.all(workers.map((w) => w.close()))
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('progress and log lines from the handler context are stored with the job', async () => {
    const queue = uniqueName('progress-')
    const job = defineJob({
      name: 'import',
      queue,
      schema: z.object({ rows: z.number() }),
      async handler({ rows }, context) {
        for (let done = 1; done <= rows; done++) {
          await context.log(`imported row ${done}`)
          await context.progress(Math.round((done / rows) * 100))
        }
        await context.progress({ rows, phase: 'done' })
        return rows
      },
    })
    const producer = createProducer({ connection: env.redis })
    const worker = createWorker({ connection: env.redis, jobs: [job] })
    const { id } = await producer.enqueue(job, { rows: 3 })
    const bull = producer.queue(queue)
    await waitFor('completed', async () => (await bull.getJobState(id)) === 'completed')
    expect((await bull.getJob(id))?.progress).toEqual({ rows: 3, phase: 'done' })
    expect((await bull.getJobLogs(id)).logs).toEqual(['imported row 1', 'imported row 2', 'imported row 3'])
    await worker.close()
    await bull.obliterate({ force: true })
    await producer.close()
  })

  it('cancel by ID: removes a waiting job, aborts a running one (no retry, no dead letter), reports finished and unknown ones', async () => {
    const queue = uniqueName('cancel-')
    const reasons: unknown[] = []
    let runs = 0
    const job = defineJob({
      name: 'render',
      queue,
      schema: z.object({ n: z.number() }),
      retry: { attempts: 3 },
      async handler(_payload, { signal }) {
        runs++
        await aborted(signal)
        reasons.push(signal.reason)
      },
    })
    const producer = createProducer({ connection: env.redis })
    const waiting = await producer.enqueue(job, { n: 1 }, { delayMs: 60_000 })
    expect(await producer.cancel(job, waiting.id)).toBe('removed')
    expect(await producer.queue(queue).getJob(waiting.id)).toBeUndefined()

    const events: WorkerEvent[] = []
    const worker = createWorker({ connection: env.redis, jobs: [job], onEvent: (e) => events.push(e) })
    const dlq = createDeadLetterQueue({ connection: env.redis, queue })
    const running = await producer.enqueue(job, { n: 2 })
    await waitFor('running', () => runs === 1)
    // Until the worker's subscription is up a cancel finds no listener; it is safe to repeat.
    await waitFor(
      'cancel heard',
      async () => (await producer.cancel(job, running.id, 'user left')) === 'signalled',
    )
    await waitFor('failed', async () => (await producer.queue(queue).getJobState(running.id)) === 'failed')
    expect(reasons).toHaveLength(1)
    expect(reasons[0]).toBeInstanceOf(JobCancelledError)
    expect((reasons[0] as Error).message).toMatch(/user left/)
    expect(runs).toBe(1) // not retried
    expect(await dlq.count()).toBe(0)
    expect(events.filter((e) => e.type === 'cancelled')).toHaveLength(1)
    expect(await producer.cancel(job, running.id)).toBe('finished')
    expect(await producer.cancel(job, 'no-such-job')).toBe('not-found')
    await worker.close()
    await dlq.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('flow: the parent runs once, after all its children, and reads their results', async () => {
    const queue = uniqueName('flow-')
    const childQueue = uniqueName('flow-child-')
    const order: string[] = []
    let parentSaw: Record<string, unknown> = {}
    const resize = defineJob({
      name: 'resize',
      queue: childQueue,
      schema: z.object({ photoId: z.string() }),
      async handler({ photoId }) {
        await sleep(20)
        order.push(photoId)
        return `${photoId}-small`
      },
    })
    const publish = defineJob({
      name: 'publish',
      queue,
      schema: z.object({ albumId: z.string() }),
      async handler(_payload, context) {
        parentSaw = await context.childrenValues()
        order.push('parent')
      },
    })
    const producer = createProducer({ connection: env.redis })
    const photos = ['p1', 'p2', 'p3', 'p4']
    const flow = await producer.enqueueFlow(
      flowJob(
        publish,
        { albumId: 'a1' },
        { children: photos.map((photoId) => flowJob(resize, { photoId })) },
      ),
    )
    expect(flow.children).toHaveLength(4)
    expect(await producer.queue(queue).getJobState(flow.id)).toBe('waiting-children')
    const worker = createWorker({ connection: env.redis, jobs: [publish, resize], concurrency: 2 })
    await waitFor('parent ran', () => order.includes('parent'), { timeoutMs: 30_000 })
    expect(order.at(-1)).toBe('parent')
    expect(order.filter((o) => o === 'parent')).toHaveLength(1)
    expect(Object.values(parentSaw).sort()).toEqual(photos.map((p) => `${p}-small`))
    await worker.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.queue(childQueue).obliterate({ force: true })
    await producer.close()
  })
})
