import { waitFor } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createProducer,
  createWorker,
  defineJob,
  EnqueueError,
  InvalidPayloadError,
  JobsOptionsError,
  type StandardSchemaV1,
} from '../src/index.js'
import { jobsClient } from './helpers.js'

const env = useRedis({ connect: jobsClient })

/** A payload schema, described so fast-check can build it, shrink it and derive values for it. */
type Shape =
  | {
      kind:
        | 'string'
        | 'number'
        | 'int'
        | 'boolean'
        | 'null'
        | 'date'
        | 'coerce-date'
        | 'any'
        | 'bigint'
        | 'undefined'
    }
  | { kind: 'optional' | 'nullable' | 'array'; of: Shape }
  | { kind: 'object'; fields: Record<string, Shape> }

const shapeArbitrary: fc.Arbitrary<Shape> = fc.letrec<{ shape: Shape }>((tie) => ({
  shape: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc
      .constantFrom(
        ...([
          'string',
          'number',
          'int',
          'boolean',
          'null',
          'date',
          'coerce-date',
          'any',
          'bigint',
          'undefined',
        ] as const),
      )
      .map((kind) => ({ kind })),
    fc.record({ kind: fc.constantFrom('optional', 'nullable', 'array' as const), of: tie('shape') }),
    fc.record({
      kind: fc.constant('object' as const),
      fields: fc.dictionary(fc.constantFrom('a', 'b', 'c'), tie('shape'), { maxKeys: 3 }),
    }),
  ),
})).shape

function schemaOf(shape: Shape): z.ZodType {
  switch (shape.kind) {
    case 'string':
      return z.string()
    case 'number':
      return z.number()
    case 'int':
      return z.number().int()
    case 'boolean':
      return z.boolean()
    case 'null':
      return z.null()
    case 'date':
      return z.date()
    case 'coerce-date':
      return z.coerce.date()
    case 'any':
      return z.any()
    case 'bigint':
      return z.bigint()
    case 'undefined':
      return z.undefined()
    case 'optional':
      return schemaOf(shape.of).optional()
    case 'nullable':
      return schemaOf(shape.of).nullable()
    case 'array':
      return z.array(schemaOf(shape.of))
    case 'object':
      return z.object(Object.fromEntries(Object.entries(shape.fields).map(([k, v]) => [k, schemaOf(v)])))
  }
}

/** Values that mostly pass the schema as given, including the ones JSON cannot carry faithfully. */
function valuesFor(shape: Shape): fc.Arbitrary<unknown> {
  switch (shape.kind) {
    case 'string':
      return fc.string({ maxLength: 5 })
    case 'number':
      return fc.double()
    case 'int':
      return fc.integer()
    case 'boolean':
      return fc.boolean()
    case 'null':
      return fc.constant(null)
    case 'date':
    case 'coerce-date':
      return fc.oneof(fc.date(), fc.integer(), fc.string({ maxLength: 3 }))
    case 'any':
      return fc.oneof(
        fc.anything({ maxDepth: 2, withDate: true, withMap: true, withSet: true, withBigInt: true }),
        fc.constant(undefined),
        fc.constant(() => 1),
      )
    case 'bigint':
      return fc.bigInt()
    case 'undefined':
      return fc.constant(undefined)
    case 'optional':
      return fc.oneof(fc.constant(undefined), valuesFor(shape.of))
    case 'nullable':
      return fc.oneof(fc.constant(null), valuesFor(shape.of))
    case 'array':
      return fc.array(valuesFor(shape.of), { maxLength: 3 })
    case 'object':
      return fc.record(Object.fromEntries(Object.entries(shape.fields).map(([k, v]) => [k, valuesFor(v)])))
  }
}

const caseArbitrary = shapeArbitrary.chain((shape) => fc.tuple(fc.constant(shape), valuesFor(shape)))

describe('what the handler receives is what was validated', () => {
  it('property: whatever enqueue accepts, the handler receives a value that passes the same schema (real Redis and BullMQ)', async () => {
    const queue = uniqueName('prop-')
    // One definition whose schema is whatever the current case says, so one worker serves every
    // case; cases run one at a time, so the schema is the same at enqueue and at run.
    let current: z.ZodType = z.any()
    const schema: StandardSchemaV1<unknown> = {
      '~standard': { version: 1, vendor: 'test', validate: (value) => current['~standard'].validate(value) },
    }
    const received = new Map<string, unknown>()
    const job = defineJob({
      name: 'prop',
      queue,
      schema,
      retry: { attempts: 1 },
      handler: (payload, { id }) => {
        received.set(id, payload)
      },
    })
    const producer = createProducer({ connection: env.redis })
    const refusedAtRun = Symbol('refused at run')
    const worker = createWorker({
      connection: env.redis,
      jobs: [job],
      deadLetter: false,
      // A payload the run-time check refuses never reaches the handler: record that at once.
      onEvent: (event) => {
        if (event.type === 'dead-lettered') received.set(event.jobId, refusedAtRun)
      },
    })
    let accepted = 0
    let refused = 0
    await fc.assert(
      fc.asyncProperty(caseArbitrary, async ([shape, value]) => {
        current = schemaOf(shape)
        let id: string
        try {
          id = (await producer.enqueue(job, value)).id
        } catch (error) {
          // Refused: with a typed, non-retryable error, never as an "enqueue failed, retry".
          expect(error).toBeInstanceOf(InvalidPayloadError)
          expect(error).not.toBeInstanceOf(EnqueueError)
          refused++
          return
        }
        accepted++
        await waitFor('the handler to run', () => received.has(id), { timeoutMs: 20_000, intervalMs: 2 })
        const got = received.get(id)
        expect(got).not.toBe(refusedAtRun)
        expect(current.safeParse(got).success).toBe(true)
      }),
      { numRuns: 200 },
    )
    // The generator exercises both sides of the rule.
    expect(accepted).toBeGreaterThan(20)
    expect(refused).toBeGreaterThan(20)
    expect(await producer.queue(queue).getFailedCount()).toBe(0)
    await worker.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  }, 120_000)

  it('z.date() is refused at enqueue (a Date arrives as a string), z.coerce.date() works end to end', async () => {
    const queue = uniqueName('dates-')
    const got: unknown[] = []
    const strict = defineJob({ name: 'strict', queue, schema: z.object({ at: z.date() }), handler: () => {} })
    const coerced = defineJob({
      name: 'coerced',
      queue,
      schema: z.object({ at: z.coerce.date() }),
      handler: ({ at }) => {
        got.push(at)
      },
    })
    const producer = createProducer({ connection: env.redis })
    const error = await producer.enqueue(strict, { at: new Date(0) }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidPayloadError)
    expect((error as InvalidPayloadError).fields).toEqual(['at'])
    expect((error as InvalidPayloadError).message).toMatch(/after JSON encoding/)
    expect(await producer.queue(queue).count()).toBe(0)

    await producer.enqueue(coerced, { at: new Date(86_400_000) })
    const worker = createWorker({ connection: env.redis, jobs: [strict, coerced] })
    await waitFor('the job ran', () => got.length === 1)
    expect(got[0]).toEqual(new Date(86_400_000))
    await worker.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('undefined and functions: refused where the schema needs them, dropped the same way at enqueue and run otherwise', async () => {
    const queue = uniqueName('undef-')
    const got: unknown[] = []
    const anyJob = defineJob({
      name: 'any',
      queue,
      schema: z.any(),
      handler: (payload) => {
        got.push(payload)
      },
    })
    const fnJob = defineJob({ name: 'fn', queue, schema: z.object({ f: z.function() }), handler: () => {} })
    const producer = createProducer({ connection: env.redis })
    await expect(producer.enqueue(anyJob, undefined)).rejects.toBeInstanceOf(InvalidPayloadError)
    await expect(producer.enqueue(anyJob, () => 1)).rejects.toBeInstanceOf(InvalidPayloadError)
    await expect(producer.enqueue(fnJob, { f: () => 1 })).rejects.toBeInstanceOf(InvalidPayloadError)
    await producer.enqueue(anyJob, { a: undefined, f: () => 1, n: 1 })
    const worker = createWorker({ connection: env.redis, jobs: [anyJob, fnJob] })
    await waitFor('the job ran', () => got.length === 1)
    expect(got[0]).toEqual({ n: 1 })
    await worker.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('validate: false keeps the schema for types only: no check at enqueue or run', async () => {
    const queue = uniqueName('novalidate-')
    const got: unknown[] = []
    const job = defineJob({
      name: 'trusted',
      queue,
      schema: z.object({ n: z.number() }),
      validate: false,
      handler: (payload) => {
        got.push(payload)
      },
    })
    const producer = createProducer({ connection: env.redis })
    await producer.enqueue(job, { n: 'not a number' as unknown as number })
    const worker = createWorker({ connection: env.redis, jobs: [job] })
    await waitFor('ran', () => got.length === 1)
    expect(got).toEqual([{ n: 'not a number' }])
    await worker.close()
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })

  it('BigInt and circular payloads are InvalidPayloadError, not a retryable EnqueueError; nothing is enqueued', async () => {
    const queue = uniqueName('bigint-')
    const job = defineJob({ name: 'j', queue, schema: z.any(), handler: () => {} })
    const producer = createProducer({ connection: env.redis })
    const circular: Record<string, unknown> = { a: 1 }
    circular.self = circular
    for (const payload of [{ n: 10n }, circular, 5n]) {
      const error = await producer.enqueue(job, payload).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(InvalidPayloadError)
      expect((error as InvalidPayloadError).message).toMatch(/cannot be stored as JSON/)
    }
    const many = await producer
      .enqueueMany(job, [{ payload: { ok: 1 } }, { payload: circular }])
      .catch((e: unknown) => e)
    expect(many).toBeInstanceOf(InvalidPayloadError)
    expect(await producer.queue(queue).count()).toBe(0)
    await producer.close()
  })

  it('an invalid cron pattern or time zone is JobsOptionsError before anything is written', async () => {
    const queue = uniqueName('cron-')
    const job = defineJob({ name: 'tick', queue, schema: z.object({}), handler: () => {} })
    const producer = createProducer({ connection: env.redis })
    for (const repeat of [
      { pattern: 'not a cron' },
      { pattern: '61 * * * *' },
      { pattern: '0 * * * *', tz: 'Mars/Olympus' },
      { everyMs: -5 },
      { everyMs: 1_000, limit: 0 },
    ]) {
      const error = await producer.schedule(job, 's', repeat, {}).catch((e: unknown) => e)
      expect(error, JSON.stringify(repeat)).toBeInstanceOf(JobsOptionsError)
    }
    expect(await producer.queue(queue).getJobSchedulersCount()).toBe(0)
    // Control: a valid pattern is scheduled.
    await producer.schedule(job, 's', { pattern: '0 * * * *', tz: 'Europe/Paris' }, {})
    expect(await producer.queue(queue).getJobSchedulersCount()).toBe(1)
    await producer.queue(queue).obliterate({ force: true })
    await producer.close()
  })
})
