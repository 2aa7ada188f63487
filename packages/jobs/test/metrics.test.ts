import { waitFor } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import * as promClient from 'prom-client'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createProducer,
  createWorker,
  defineJob,
  type MetricsHook,
  PermanentError,
  promClientMetrics,
  type WorkerEvent,
} from '../src/index.js'
import { jobsClient } from './helpers.js'

const env = useRedis({ connect: jobsClient })

/** A hook that records every call, keyed by name and labels. */
function recorder() {
  const counts = new Map<string, number>()
  const observed: Array<{ name: string; value: number }> = []
  const hook: MetricsHook = {
    increment(name, labels, value = 1) {
      const key = `${name}${JSON.stringify(labels ?? {})}`
      counts.set(key, (counts.get(key) ?? 0) + value)
    },
    observe(name, value) {
      observed.push({ name, value })
    },
  }
  const count = (name: string, labels: Record<string, string>) =>
    counts.get(`${name}${JSON.stringify(labels)}`) ?? 0
  return { hook, count, observed }
}

describe('metrics hook', () => {
  it('counts enqueues, completions and dead letters, and observes each run', async () => {
    const queue = uniqueName('metrics-')
    const job = defineJob({
      name: 'charge',
      queue,
      schema: z.object({ ok: z.boolean() }),
      retry: { attempts: 3, baseDelayMs: 10 },
      handler: ({ ok }) => {
        if (!ok) throw new PermanentError('card refused')
      },
    })
    const { hook, count, observed } = recorder()
    const producer = createProducer({ connection: env.redis, metrics: hook })
    await producer.enqueue(job, { ok: true })
    await producer.enqueue(job, { ok: false })
    await producer.enqueueMany(job, [{ payload: { ok: true } }, { payload: { ok: true } }])
    const labels = { queue, job: 'charge' }
    expect(count('jobs_enqueued_total', labels)).toBe(4)
    const worker = createWorker({ connection: env.redis, jobs: [job], concurrency: 4, metrics: hook })
    await waitFor(
      'all four jobs finished',
      () =>
        count('jobs_completed_total', labels) +
          count('jobs_dead_lettered_total', { ...labels, permanent: 'true' }) ===
        4,
      { timeoutMs: 30_000 },
    )
    await worker.close()
    expect(count('jobs_completed_total', labels)).toBe(3)
    expect(count('jobs_dead_lettered_total', { ...labels, permanent: 'true' })).toBe(1)
    expect(count('jobs_retries_total', labels)).toBe(0)
    expect(observed.filter((o) => o.name === 'jobs_run_seconds')).toHaveLength(4)
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('a hook that throws breaks no call: jobs are enqueued and run, the failure is logged once', async () => {
    const queue = uniqueName('metrics-throw-')
    const job = defineJob({ name: 'noop', queue, schema: z.object({ n: z.number() }), handler: () => {} })
    const warnings: string[] = []
    const logger = { info() {}, warn: (_: object, message: string) => warnings.push(message), error() {} }
    const broken: MetricsHook = {
      increment() {
        throw new Error('statsd is down')
      },
      observe() {
        throw new Error('statsd is down')
      },
    }
    const completed: WorkerEvent[] = []
    const producer = createProducer({ connection: env.redis, metrics: broken, logger })
    await producer.enqueue(job, { n: 1 })
    await producer.enqueue(job, { n: 2 })
    const worker = createWorker({
      connection: env.redis,
      jobs: [job],
      metrics: broken,
      logger,
      onEvent: (event) => {
        if (event.type === 'completed') completed.push(event)
      },
    })
    await waitFor('both jobs completed', () => completed.length === 2, { timeoutMs: 30_000 })
    await worker.close()
    // One warning from the producer's hook, one from the worker's: each logs its first failure only.
    expect(warnings.filter((w) => w.includes('metrics hook threw'))).toHaveLength(2)
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('promClientMetrics feeds prom-client counters; the deprecated `metrics: true` still turns on BullMQ metrics', async () => {
    const queue = uniqueName('metrics-prom-')
    const job = defineJob({ name: 'noop', queue, schema: z.object({ n: z.number() }), handler: () => {} })
    const registry = new promClient.Registry()
    const metrics = promClientMetrics({ promClient, registers: [registry] })
    const producer = createProducer({ connection: env.redis, metrics })
    await producer.enqueue(job, { n: 1 })
    await producer.enqueue(job, { n: 2 })
    const worker = createWorker({ connection: env.redis, jobs: [job], metrics })
    const legacy = createWorker({ connection: env.redis, jobs: [job], metrics: true, autorun: false })
    await waitFor(
      'both jobs completed',
      async () =>
        (await registry.metrics()).includes(`scale_jobs_completed_total{queue="${queue}",job="noop"} 2`),
      { timeoutMs: 30_000 },
    )
    const text = await registry.metrics()
    expect(text).toContain(`scale_jobs_enqueued_total{queue="${queue}",job="noop"} 2`)
    expect(text).toContain(`scale_jobs_run_seconds_count{queue="${queue}"} 2`)
    await worker.close()
    // The legacy worker runs one job with BullMQ metrics on: BullMQ counts it in its metrics hash.
    await producer.enqueue(job, { n: 3 })
    legacy.run()
    await waitFor(
      'BullMQ counted the legacy run',
      async () => Number(await env.redis.hget(`{jobs}:${queue}:metrics:completed`, 'count')) === 1,
      { timeoutMs: 30_000 },
    )
    await legacy.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })
})
