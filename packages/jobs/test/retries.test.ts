import { waitFor } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { retryDelayMs } from '../src/backoff.js'
import {
  createDeadLetterQueue,
  createProducer,
  createWorker,
  DeadLetterNotFoundError,
  defineJob,
  JobsOptionsError,
  PermanentError,
  ShutdownDeadlineError,
  type WorkerEvent,
} from '../src/index.js'
import { jobsClient } from './helpers.js'

const env = useRedis({ connect: jobsClient })

describe('retries, dead letters and redrive', () => {
  it('computes exponential delays with jitter that never shrink from one retry to the next', () => {
    const retry = { attempts: 10, baseDelayMs: 100, maxDelayMs: 100_000, jitter: 0.5 }
    for (let trial = 0; trial < 200; trial++) {
      let previous = 0
      for (let n = 1; n <= 8; n++) {
        const delay = retryDelayMs(retry, n)
        const nominal = 100 * 2 ** (n - 1)
        expect(delay).toBeGreaterThanOrEqual(nominal * 0.5)
        expect(delay).toBeLessThanOrEqual(nominal)
        expect(delay).toBeGreaterThanOrEqual(previous)
        previous = delay
      }
    }
    // Jitter really varies the delay (workers failing together do not retry in lockstep).
    const samples = new Set(Array.from({ length: 50 }, () => retryDelayMs(retry, 3)))
    expect(samples.size).toBeGreaterThan(1)
    expect(retryDelayMs({ ...retry, maxDelayMs: 500 }, 20)).toBeLessThanOrEqual(500)
  })

  it('retries a handler failing N times then succeeding, with growing delays', async () => {
    const queue = uniqueName('flaky-')
    const failures = 3
    const runs: number[] = []
    const flaky = defineJob({
      name: 'flaky',
      queue,
      schema: z.object({ id: z.string() }),
      retry: { attempts: 5, baseDelayMs: 200, jitter: 0.5 },
      handler: () => {
        runs.push(Date.now())
        if (runs.length <= failures) throw new Error(`transient failure ${runs.length}`)
        return 'done'
      },
    })
    const delays: number[] = []
    const worker = createWorker({
      connection: env.redis,
      jobs: [flaky],
      shutdown: { signals: [] },
      onEvent: (event: WorkerEvent) => {
        if (event.type === 'retry-scheduled') delays.push(event.delayMs)
      },
    })
    const producer = createProducer({ connection: env.redis })
    const { id } = await producer.enqueue(flaky, { id: 'x' })
    await waitFor(
      'flaky job completed',
      async () => (await producer.queue(queue).getJobState(id)) === 'completed',
      {
        timeoutMs: 60_000,
      },
    )
    expect(runs).toHaveLength(failures + 1)
    expect(delays).toHaveLength(failures)
    for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThan(delays[i - 1] as number)
    // Each gap between runs is at least the delay that was scheduled for it.
    for (let i = 1; i < runs.length; i++) {
      expect((runs[i] as number) - (runs[i - 1] as number)).toBeGreaterThanOrEqual(
        (delays[i - 1] as number) - 5,
      )
    }
    const job = await producer.queue(queue).getJob(id)
    expect(job?.returnvalue).toBe('done')
    const dlq = createDeadLetterQueue({ connection: env.redis, queue })
    expect(await dlq.count()).toBe(0)
    await worker.close()
    await dlq.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('dead-letters a job that always fails after the configured attempts; redrive runs it again', async () => {
    const queue = uniqueName('always-')
    let broken = true
    const runsById = new Map<string, number>()
    const charge = defineJob({
      name: 'charge',
      queue,
      schema: z.object({ orderId: z.string() }),
      retry: { attempts: 3, baseDelayMs: 50 },
      handler: ({ orderId }) => {
        runsById.set(orderId, (runsById.get(orderId) ?? 0) + 1)
        if (broken) throw new Error(`payment gateway down for ${orderId}`)
        return { charged: orderId }
      },
    })
    const worker = createWorker({
      connection: env.redis,
      jobs: [charge],
      concurrency: 5,
      shutdown: { signals: [] },
    })
    const producer = createProducer({ connection: env.redis })
    const dlq = createDeadLetterQueue({ connection: env.redis, queue })
    for (const orderId of ['a', 'b', 'c']) await producer.enqueue(charge, { orderId })
    await waitFor('three dead letters', async () => (await dlq.count()) === 3, { timeoutMs: 60_000 })
    expect([...runsById.values()]).toEqual([3, 3, 3])
    const entries = await dlq.list()
    expect(entries.map((e) => (e.payload as { orderId: string }).orderId).sort()).toEqual(['a', 'b', 'c'])
    for (const entry of entries) {
      expect(entry.attemptsMade).toBe(3)
      expect(entry.permanent).toBe(false)
      expect(entry.reason).toContain('payment gateway down')
      expect(entry.name).toBe('charge')
    }
    const first = entries[0]
    if (!first) throw new Error('no entry')
    expect((await dlq.inspect(first.id)).reason).toBe(first.reason)
    await expect(dlq.inspect('nope')).rejects.toBeInstanceOf(DeadLetterNotFoundError)

    // Filtered, rate-limited redrive: only order b, then the rest.
    broken = false
    const onlyB = await dlq.redrive({
      filter: { where: (e) => (e.payload as { orderId: string }).orderId === 'b' },
    })
    expect(onlyB.redriven).toHaveLength(1)
    await waitFor('b ran again', async () => runsById.get('b') === 4, { timeoutMs: 30_000 })
    expect(runsById.get('a')).toBe(3)
    expect(await dlq.count()).toBe(2)
    await expect(dlq.redrive({ ratePerSecond: 0 })).rejects.toBeInstanceOf(JobsOptionsError)
    const restEntries = await dlq.list()
    const started = Date.now()
    const rest = await dlq.redrive({ ratePerSecond: 10 })
    expect(rest.redriven).toHaveLength(2)
    // Two at 10/s: the second waits ~100 ms after the first.
    expect(Date.now() - started).toBeGreaterThanOrEqual(90)
    await waitFor(
      'all redriven jobs completed',
      async () => (await producer.queue(queue).getCompletedCount()) === 3,
      {
        timeoutMs: 30_000,
      },
    )
    expect(await dlq.count()).toBe(0)
    const redrivenJob = await producer.queue(queue).getJob(rest.redriven[0]?.jobId as string)
    expect(redrivenJob?.returnvalue).toEqual({
      charged: (redrivenJob?.data as { orderId: string } | undefined)?.orderId,
    })
    // The redriven job keeps the definition's retention (not BullMQ's keep-forever default).
    expect(redrivenJob?.opts.removeOnComplete).toEqual({ count: 10_000 })
    // A redrive that died after its add and before deleting the entry, run again: no second job.
    const interrupted = restEntries[0]
    if (!interrupted) throw new Error('no entry')
    await env.redis
      .multi()
      .hset(`{jobs}:${queue}:dlq-data`, interrupted.id, JSON.stringify(interrupted))
      .zadd(`{jobs}:${queue}:dlq`, interrupted.failedAt, interrupted.id)
      .exec()
    const again = await dlq.redrive()
    expect(again.redriven.map((r) => r.jobId)).toEqual([
      rest.redriven.find((r) => r.entryId === interrupted.id)?.jobId,
    ])
    expect(await producer.queue(queue).count()).toBe(0)
    expect(await producer.queue(queue).getCompletedCount()).toBe(3)
    expect([...runsById.values()].sort()).toEqual([4, 4, 4])
    await worker.close()
    await dlq.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('a job failing during a graceful shutdown is retried or dead-lettered, not left active (bullmq #834)', async () => {
    const queue = uniqueName('fail-on-close-')
    let started = 0
    const job = defineJob({
      name: 'slow-fail',
      queue,
      schema: z.object({ last: z.boolean() }),
      retry: { attempts: 2, baseDelayMs: 60_000 },
      handler: async ({ last }) => {
        started++
        await new Promise((resolve) => setTimeout(resolve, 300))
        throw new Error(last ? 'fails on its last attempt' : 'fails on its first attempt')
      },
    })
    const producer = createProducer({ connection: env.redis })
    const dlq = createDeadLetterQueue({ connection: env.redis, queue })
    const first = await producer.enqueue(job, { last: false })
    const worker = createWorker({
      connection: env.redis,
      jobs: [job],
      concurrency: 2,
      shutdown: { signals: [] },
    })
    await waitFor('the job started', async () => started === 1, { timeoutMs: 30_000 })
    const report = await worker.close({ deadlineMs: 10_000 })
    expect(report.returned).toEqual([])
    expect(report.finished).toBe(0) // failed with attempts left: not finished, retry scheduled
    expect(await producer.queue(queue).getJobState(first.id)).toBe('delayed')
    expect(await producer.queue(queue).getActiveCount()).toBe(0)
    await producer.queue(queue).obliterate({ force: true })

    const last = await producer.enqueue(defineJob({ ...job, retry: { attempts: 1 } }), { last: true })
    const worker2 = createWorker({ connection: env.redis, jobs: [job], shutdown: { signals: [] } })
    await waitFor('the job started', async () => started === 2, { timeoutMs: 30_000 })
    await worker2.close({ deadlineMs: 10_000 })
    expect(await producer.queue(queue).getJobState(last.id)).toBe('failed')
    expect((await dlq.inspect(last.id)).reason).toContain('fails on its last attempt')
    await dlq.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('close() hands back jobs still running at the deadline, aborting their signal with ShutdownDeadlineError', async () => {
    const queue = uniqueName('hand-back-')
    const reasons: unknown[] = []
    const job = defineJob({
      name: 'slow',
      queue,
      schema: z.object({ lazy: z.boolean() }),
      handler: async ({ lazy }, context) => {
        if (!lazy) {
          // Listens from the start.
          await new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve()))
          reasons.push(context.signal.reason)
          return
        }
        // Reads its signal only after the hand-back: it must already be aborted, with the same reason.
        while (reasons.length === 0) await new Promise((resolve) => setTimeout(resolve, 20))
        reasons.push(context.signal.reason)
      },
    })
    const producer = createProducer({ connection: env.redis })
    const eager = await producer.enqueue(job, { lazy: false })
    const lazy = await producer.enqueue(job, { lazy: true })
    const worker = createWorker({
      connection: env.redis,
      jobs: [job],
      concurrency: 2,
      shutdown: { signals: [] },
    })
    await waitFor('both running', async () => (await producer.queue(queue).getActiveCount()) === 2, {
      timeoutMs: 30_000,
    })
    const report = await worker.close({ deadlineMs: 1_000 })
    expect([...report.returned].sort()).toEqual([eager.id, lazy.id].sort())
    await waitFor('both handlers saw the abort', async () => reasons.length === 2, { timeoutMs: 30_000 })
    for (const reason of reasons) {
      expect(reason).toBeInstanceOf(ShutdownDeadlineError)
      expect((reason as ShutdownDeadlineError).code).toBe('E_JOBS_SHUTDOWN_DEADLINE')
    }
    // Back in the queue, runnable at once, not counted as a failed attempt.
    expect(await producer.queue(queue).getWaitingCount()).toBe(2)
    expect((await producer.queue(queue).getJob(eager.id))?.attemptsMade).toBe(0)
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('a PermanentError skips the remaining retries', async () => {
    const queue = uniqueName('permanent-')
    let runs = 0
    const job = defineJob({
      name: 'refund',
      queue,
      schema: z.object({ id: z.number() }),
      retry: { attempts: 10, baseDelayMs: 50 },
      handler: () => {
        runs++
        throw new PermanentError('card closed')
      },
    })
    const worker = createWorker({ connection: env.redis, jobs: [job], shutdown: { signals: [] } })
    const producer = createProducer({ connection: env.redis })
    const dlq = createDeadLetterQueue({ connection: env.redis, queue })
    await producer.enqueue(job, { id: 1 })
    await waitFor('dead-lettered', async () => (await dlq.count()) === 1, { timeoutMs: 30_000 })
    const [entry] = await dlq.list()
    expect(runs).toBe(1)
    expect(entry?.permanent).toBe(true)
    expect(entry?.errorCode).toBe('E_JOBS_PERMANENT')
    expect(await producer.queue(queue).getFailedCount()).toBe(1)
    // Purge by filter.
    expect(await dlq.purge({ errorCode: 'E_JOBS_PERMANENT' })).toBe(1)
    expect(await dlq.count()).toBe(0)
    await worker.close()
    await dlq.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('dead-letters a job no definition knows, without retries', async () => {
    const queue = uniqueName('unknown-')
    const known = defineJob({ name: 'known', queue, schema: z.object({}), handler: () => {} })
    const other = defineJob({ name: 'other', queue, schema: z.object({}), handler: () => {} })
    const producer = createProducer({ connection: env.redis })
    await producer.enqueue(other, {})
    const worker = createWorker({ connection: env.redis, jobs: [known], shutdown: { signals: [] } })
    const dlq = createDeadLetterQueue({ connection: env.redis, queue })
    await waitFor('dead-lettered', async () => (await dlq.count()) === 1, { timeoutMs: 30_000 })
    expect((await dlq.list())[0]?.errorCode).toBe('E_JOBS_UNKNOWN_JOB')
    await worker.close()
    await dlq.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })
})
