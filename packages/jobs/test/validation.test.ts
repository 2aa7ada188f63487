import { waitFor } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import type { StandardSchemaV1 } from '@standard-schema/spec'
import { Queue } from 'bullmq'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import {
  createDeadLetterQueue,
  createProducer,
  createWorker,
  type StandardSchemaV1 as DeprecatedStandardSchemaV1,
  defineJob,
  InvalidPayloadError,
  JobsOptionsError,
} from '../src/index.js'
import { jobsClient } from './helpers.js'

const env = useRedis({ connect: jobsClient })

describe('payload validation', () => {
  it('refuses an invalid payload at enqueue with a typed error naming the bad field, and enqueues nothing', async () => {
    const queue = uniqueName('validate-')
    const resize = defineJob({
      name: 'resize',
      queue,
      schema: z.object({ photoId: z.string(), size: z.object({ width: z.number().int().positive() }) }),
      handler: () => {},
    })
    const producer = createProducer({ connection: env.redis })
    const error = await producer.enqueue(resize, { photoId: 'p1', size: { width: -5 } }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(InvalidPayloadError)
    const invalid = error as InvalidPayloadError
    expect(invalid.code).toBe('E_JOBS_INVALID_PAYLOAD')
    expect(invalid.fields).toEqual(['size.width'])
    expect(invalid.phase).toBe('enqueue')
    expect(invalid.message).toContain('size.width')
    expect(invalid.message).toMatch(/^\[@scale\/jobs\]/)
    // A wrong type is named too (the field path, not just "invalid").
    const wrongType = await producer
      .enqueue(resize, { photoId: 7 as unknown as string, size: { width: 10 } })
      .catch((e: unknown) => e)
    expect((wrongType as InvalidPayloadError).fields).toEqual(['photoId'])
    expect(await producer.queue(queue).count()).toBe(0)

    // The producer is typed by the definition: a wrong payload does not compile.
    const typeCheckOnly = () =>
      // @ts-expect-error width must be a number
      producer.enqueue(resize, { photoId: 'p1', size: { width: '5' } })
    expect(typeof typeCheckOnly).toBe('function')

    // Control: a valid payload is enqueued.
    const ok = await producer.enqueue(resize, { photoId: 'p1', size: { width: 5 } })
    expect(await producer.queue(queue).getJobCountByTypes('waiting')).toBe(1)
    expect(ok.queue).toBe(queue)
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('keeps the deprecated StandardSchemaV1 export as the @standard-schema/spec type itself', () => {
    // Checked by tsc (pnpm typecheck): a schema typed either way is accepted where the other is.
    expectTypeOf<DeprecatedStandardSchemaV1<{ n: number }>>().toEqualTypeOf<StandardSchemaV1<{ n: number }>>()
    expectTypeOf<
      DeprecatedStandardSchemaV1.InferOutput<StandardSchemaV1<string, number>>
    >().toEqualTypeOf<number>()
    const schema: DeprecatedStandardSchemaV1<{ n: number }> = z.object({ n: z.number() })
    expect(defineJob({ name: 'old-type', queue: 'unused', schema, handler: () => {} }).schema).toBe(schema)
  })

  it('works with any Standard Schema validator, not only zod', async () => {
    const queue = uniqueName('std-')
    // A minimal hand-written Standard Schema, as valibot or arktype would present one.
    const schema: StandardSchemaV1<{ n: number }> = {
      '~standard': {
        version: 1,
        vendor: 'hand',
        validate: (value) =>
          typeof (value as { n?: unknown })?.n === 'number'
            ? { value: value as { n: number } }
            : { issues: [{ message: 'n must be a number', path: [{ key: 'n' }] }] },
      },
    }
    const job = defineJob({ name: 'n', queue, schema, handler: () => {} })
    const producer = createProducer({ connection: env.redis })
    const error = await producer.enqueue(job, { n: 'x' as unknown as number }).catch((e: unknown) => e)
    expect((error as InvalidPayloadError).fields).toEqual(['n'])
    await producer.enqueue(job, { n: 1 })
    expect(await producer.queue(queue).count()).toBe(1)
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('dead-letters without retries a payload that turned invalid before it ran (written by an older producer)', async () => {
    const queue = uniqueName('stale-')
    let handled = 0
    const email = defineJob({
      name: 'send-email',
      queue,
      schema: z.object({ to: z.email(), subject: z.string() }),
      retry: { attempts: 5, baseDelayMs: 50 },
      handler: () => {
        handled++
      },
    })
    // The older producer: plain BullMQ, an old shape (no subject, `address` instead of `to`).
    const raw = new Queue(queue, { connection: env.redis, prefix: '{jobs}' })
    await raw.add(
      'send-email',
      { address: 'a@example.com' },
      { attempts: 5, backoff: { type: 'scale-jobs' } },
    )
    // Control: a good job in the same queue runs.
    const producer = createProducer({ connection: env.redis })
    await producer.enqueue(email, { to: 'b@example.com', subject: 'hi' })

    const attemptsSeen: number[] = []
    const worker = createWorker({
      connection: env.redis,
      jobs: [email],
      concurrency: 2,
      shutdown: { signals: [] },
      onEvent: (event) => {
        if (event.type === 'retry-scheduled') attemptsSeen.push(event.attempt)
      },
    })
    const dlq = createDeadLetterQueue({ connection: env.redis, queue })
    await waitFor('stale job dead-lettered', async () => (await dlq.count()) === 1 && handled === 1, {
      timeoutMs: 30_000,
    })
    const [entry] = await dlq.list()
    expect(entry?.errorCode).toBe('E_JOBS_INVALID_PAYLOAD')
    expect(entry?.permanent).toBe(true)
    expect(entry?.attemptsMade).toBe(1)
    expect(entry?.payload).toEqual({ address: 'a@example.com' })
    expect(entry?.reason).toContain('to')
    expect(entry?.reason).toContain('subject')
    expect(attemptsSeen).toEqual([])
    const failed = await raw.getFailed()
    expect(failed).toHaveLength(1)
    expect(failed[0]?.attemptsMade).toBe(1)

    await worker.close({ deadlineMs: 5_000 })
    await dlq.close()
    await producer.close()
    await raw.obliterate({ force: true })
    await raw.close()
  })

  it('dead-letters a job whose stored data is not JSON, without retries, and keeps working', async () => {
    const queue = uniqueName('not-json-')
    const handled: number[] = []
    const job = defineJob({
      name: 'j',
      queue,
      schema: z.object({ n: z.number() }),
      retry: { attempts: 5, baseDelayMs: 50 },
      handler: ({ n }) => void handled.push(n),
    })
    const producer = createProducer({ connection: env.redis })
    const corrupt = await producer.enqueue(job, { n: 1 })
    // Written by another client, or corrupted: BullMQ itself throws while reading this job.
    await env.redis.hset(`{jobs}:${queue}:${corrupt.id}`, 'data', '{"n": 1,')
    await producer.enqueue(job, { n: 2 })
    const errors: unknown[] = []
    const worker = createWorker({
      connection: env.redis,
      jobs: [job],
      shutdown: { signals: [] },
      logger: { info() {}, warn() {}, error: (object) => errors.push(object.err) },
    })
    const dlq = createDeadLetterQueue({ connection: env.redis, queue })
    await waitFor(
      'corrupt job dead-lettered, good job run',
      async () => (await dlq.count()) === 1 && handled.length === 1,
      {
        timeoutMs: 30_000,
      },
    )
    const entry = await dlq.inspect(corrupt.id)
    expect(entry.errorCode).toBe('E_JOBS_INVALID_PAYLOAD')
    expect(entry.permanent).toBe(true)
    expect(entry.attemptsMade).toBe(1)
    expect(entry.reason).toContain('not valid JSON')
    // The stored text is kept, to fix and redrive.
    expect(entry.payload).toBe('{"n": 1,')
    expect(handled).toEqual([2])
    expect(await producer.queue(queue).getJobState(corrupt.id)).toBe('failed')
    expect(await producer.queue(queue).getActiveCount()).toBe(0)
    expect(errors).toEqual([])
    await worker.close()
    await dlq.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('upgrades old payload versions with migrations before validating', async () => {
    const queue = uniqueName('versions-')
    const seen: unknown[] = []
    const v1 = defineJob({ name: 'greet', queue, schema: z.object({ name: z.string() }), handler: () => {} })
    const v2 = defineJob({
      name: 'greet',
      queue,
      version: 2,
      schema: z.object({ first: z.string(), last: z.string() }),
      migrations: {
        1: (old) => {
          const [first = '', last = ''] = String((old as { name: string }).name).split(' ')
          return { first, last }
        },
      },
      handler: (payload) => {
        seen.push(payload)
      },
    })
    const producer = createProducer({ connection: env.redis })
    await producer.enqueue(v1, { name: 'Ada Lovelace' }) // an old producer still deployed
    await producer.enqueue(v2, { first: 'Grace', last: 'Hopper' })
    const worker = createWorker({ connection: env.redis, jobs: [v2], shutdown: { signals: [] } })
    await waitFor('both versions handled', async () => seen.length === 2, { timeoutMs: 30_000 })
    expect(seen).toContainEqual({ first: 'Ada', last: 'Lovelace' })
    expect(seen).toContainEqual({ first: 'Grace', last: 'Hopper' })
    await worker.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('retries a payload from a newer producer, and dead-letters an old one with no migration', async () => {
    const queue = uniqueName('version-gap-')
    const v1 = defineJob({ name: 'greet', queue, schema: z.object({ name: z.string() }), handler: () => {} })
    const v3 = defineJob({
      name: 'greet',
      queue,
      version: 3,
      schema: z.object({ name: z.string() }),
      retry: { attempts: 2, baseDelayMs: 20 },
      handler: () => {},
    })
    const other = defineJob({ name: 'other', queue, version: 2, schema: z.number(), handler: () => {} })
    const producer = createProducer({ connection: env.redis })
    const retried: string[] = []
    // A worker still on version 1 meets a version-3 job: it cannot understand it, so it retries
    // (newer workers may be rolling out) and only dead-letters after the attempts.
    const oldWorker = createWorker({
      connection: env.redis,
      jobs: [v1],
      shutdown: { signals: [] },
      onEvent: (event) => {
        if (event.type === 'retry-scheduled') retried.push(event.jobId)
      },
    })
    const dlq = createDeadLetterQueue({ connection: env.redis, queue })
    const newer = await producer.enqueue(v3, { name: 'x' })
    await waitFor('newer job dead-lettered', async () => (await dlq.count()) === 1, { timeoutMs: 30_000 })
    expect(retried).toEqual([newer.id])
    expect((await dlq.inspect(newer.id)).errorCode).toBe('E_JOBS_UNSUPPORTED_VERSION')
    await oldWorker.close()
    // A version-3 worker (with a job of another payload type beside it) meets a version-1 job
    // and has no migration from 1: dead-lettered at once.
    const newWorker = createWorker({ connection: env.redis, jobs: [v3, other], shutdown: { signals: [] } })
    const old = await producer.enqueue(v1, { name: 'y' })
    await waitFor('old job dead-lettered', async () => (await dlq.count()) === 2, { timeoutMs: 30_000 })
    const entry = await dlq.inspect(old.id)
    expect(entry.errorCode).toBe('E_JOBS_MISSING_MIGRATION')
    expect(entry.attemptsMade).toBe(1)
    await newWorker.close()
    await dlq.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('rejects bad definitions and a cluster-unsafe prefix with typed errors', () => {
    expect(() => defineJob({ name: 'a:b', schema: z.object({}), handler: () => {} })).toThrow(
      JobsOptionsError,
    )
    expect(() =>
      defineJob({ name: 'a', schema: z.object({}), retry: { attempts: 0 }, handler: () => {} }),
    ).toThrow(/attempts/)
    expect(() => createProducer({ connection: env.redis, keyPrefix: 'a:b' })).toThrow(JobsOptionsError)
  })
})
