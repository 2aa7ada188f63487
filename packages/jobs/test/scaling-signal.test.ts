import { waitFor } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import * as promClient from 'prom-client'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createProducer,
  createScalingSignal,
  createWorker,
  defineJob,
  registerScalingMetrics,
  type ScalingSignal,
  suggestWorkers,
} from '../src/index.js'
import { jobsClient, sleep } from './helpers.js'

const env = useRedis({ connect: jobsClient })

describe('autoscaling signal', () => {
  it('suggestWorkers follows arrivals, work in flight and backlog', () => {
    const base = {
      backlog: 0,
      active: 0,
      arrivalRate: 0,
      jobSeconds: 0.5,
      concurrencyPerWorker: 10,
      targetDrainSeconds: 10,
      minWorkers: 1,
      maxWorkers: 50,
    }
    expect(suggestWorkers(base)).toBe(1)
    // 100 jobs/s of 0.5 s each at 10 per worker: Little's law says 5 workers.
    expect(suggestWorkers({ ...base, arrivalRate: 100 })).toBe(5)
    // A backlog of 400 to drain in 10 s at 20 jobs/s per worker: 2 more.
    expect(suggestWorkers({ ...base, arrivalRate: 100, backlog: 400 })).toBe(7)
    expect(suggestWorkers({ ...base, active: 30 })).toBe(3)
    expect(suggestWorkers({ ...base, backlog: 1_000_000 })).toBe(50)
  })

  it('the suggested worker count rises with a growing backlog and falls when it drains', async () => {
    const queue = uniqueName('scale-')
    const job = defineJob({
      name: 'work',
      queue,
      schema: z.object({ n: z.number() }),
      handler: async () => sleep(2),
    })
    const producer = createProducer({ connection: env.redis })
    const signal = createScalingSignal({
      connection: env.redis,
      queue,
      concurrencyPerWorker: 10,
      targetDrainSeconds: 10,
      maxWorkers: 1_000,
    })
    const empty = await signal.read()
    expect(empty.backlog).toBe(0)
    expect(empty.suggestedWorkers).toBe(0)

    const settled: ScalingSignal[] = []
    let n = 0
    for (const batch of [200, 1_000, 3_000]) {
      await producer.enqueueMany(
        job,
        Array.from({ length: batch }, () => ({ payload: { n: n++ } })),
      )
      const arriving = await signal.read()
      expect(arriving.arrivalRate).toBeGreaterThan(0)
      // Read again at once: the arrival burst is behind us, what remains is the backlog.
      settled.push(await signal.read())
    }
    expect(settled.map((s) => s.backlog)).toEqual([200, 1_200, 4_200])
    const suggested = settled.map((s) => s.suggestedWorkers)
    for (let i = 1; i < suggested.length; i++)
      expect(suggested[i]).toBeGreaterThan(suggested[i - 1] as number)
    expect(settled.at(-1)?.oldestJobAgeSeconds).toBeGreaterThan(0)

    // A due delayed job counts as ready work (no worker has promoted it yet).
    await producer.enqueue(job, { n: -1 }, { delayMs: 20 })
    await sleep(60)
    const withDelayed = await signal.read()
    expect(withDelayed.delayed).toBe(1)
    expect(withDelayed.delayedDue).toBe(1)
    expect(withDelayed.backlog).toBe(4_201)

    // Exported to Prometheus too.
    const registry = new promClient.Registry()
    registerScalingMetrics({
      promClient,
      signals: [
        createScalingSignal({
          connection: env.redis,
          queue,
          concurrencyPerWorker: 10,
          targetDrainSeconds: 10,
          maxWorkers: 1_000,
        }),
      ],
      registers: [registry],
    })
    const text = await registry.metrics()
    expect(text).toContain(`scale_jobs_backlog{queue="${queue}"} 4201`)
    expect(text).toMatch(new RegExp(`scale_jobs_suggested_workers\\{queue="${queue}"\\} [1-9]`))

    // One worker with BullMQ metrics on (exact counts), one with the default flushed counters.
    const workers = [true, false].map((bullmqMetrics) =>
      createWorker({
        connection: env.redis,
        jobs: [job],
        concurrency: 10,
        statsIntervalMs: 100,
        bullmqMetrics,
        shutdown: { signals: [] },
      }),
    )
    const during: ScalingSignal[] = []
    await waitFor(
      'backlog drained',
      async () => {
        const reading = await signal.read()
        during.push(reading)
        return reading.backlog === 0 && reading.active === 0
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    )
    await Promise.all(workers.map((w) => w.close()))
    // The workers' last counts were flushed at close; an autoscaler polls, and by its next read
    // the counts agree with the queue again.
    await signal.read()
    const drained = await signal.read()
    const peak = Math.max(...settled.map((s) => s.suggestedWorkers))
    expect(during.some((d) => d.completionRate > 0)).toBe(true)
    expect(drained.backlog).toBe(0)
    expect(drained.suggestedWorkers).toBeLessThan(peak)
    expect(drained.suggestedWorkers).toBe(0)
    // Handler time was measured from the workers, replacing the 1 s default.
    expect(drained.jobSeconds).toBeLessThan(1)
    await signal.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })
})
