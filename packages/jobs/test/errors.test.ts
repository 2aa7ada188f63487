import { uniqueName, useRedis } from '@scale/testkit/vitest'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createDeadLetterQueue,
  createProducer,
  createScalingSignal,
  createWorker,
  defineJob,
  InvalidOptionsError,
  JobsClosedError,
  JobsError,
  JobsOptionsError,
  PermanentError,
} from '../src/index.js'
import { jobsClient } from './helpers.js'

const env = useRedis({ connect: jobsClient })

describe('errors: one shape', () => {
  it('an options error names the option in context and keeps the deprecated alias working', () => {
    const error = (() => {
      try {
        createProducer({ connection: env.redis, keyPrefix: 'a:b' })
      } catch (caught) {
        return caught
      }
    })()
    expect(error).toBeInstanceOf(JobsOptionsError)
    expect(error).toBeInstanceOf(InvalidOptionsError)
    expect(error).toBeInstanceOf(JobsError)
    const typed = error as JobsOptionsError
    expect(typed.code).toBe('E_JOBS_INVALID_OPTIONS')
    expect(typed.name).toBe('JobsOptionsError')
    expect(typed.context).toEqual({ option: 'keyPrefix' })
    expect(typed.message).toMatch(/^\[@scale\/jobs\] /)
    // The deprecated `prefix` still works, and the error names the option that was given.
    expect(() => createProducer({ connection: env.redis, prefix: 'a:b' })).toThrow(/prefix "a:b"/)
    const viaOld = (() => {
      try {
        createProducer({ connection: env.redis, prefix: 'a:b' })
      } catch (caught) {
        return caught as JobsOptionsError
      }
    })()
    expect(viaOld?.context).toEqual({ option: 'prefix' })
  })

  it('closed readers throw JobsClosedError; close() is idempotent', async () => {
    const queue = uniqueName('closed-readers-')
    const signal = createScalingSignal({ connection: env.redis, queue })
    const dlq = createDeadLetterQueue({ connection: env.redis, queue })
    await Promise.all([signal.close(), dlq.close()])
    await Promise.all([signal.close(), dlq.close()])
    await expect(signal.read()).rejects.toBeInstanceOf(JobsClosedError)
    const error = await dlq.count().catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(JobsClosedError)
    expect((error as JobsClosedError).context).toEqual({ method: 'count' })
    // The user's Redis stays open.
    expect(await env.redis.ping()).toBe('PONG')
  })

  it('a closed producer throws JobsClosedError naming the method', async () => {
    const job = defineJob({
      name: 'closed-check',
      queue: uniqueName('closed-'),
      schema: z.object({ n: z.number() }),
      handler: () => {},
    })
    const producer = createProducer({ connection: env.redis })
    await producer.close()
    const error = await producer.enqueue(job, { n: 1 }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(JobsClosedError)
    expect((error as JobsClosedError).code).toBe('E_JOBS_CLOSED')
    expect((error as JobsClosedError).context).toEqual({ method: 'enqueue' })
    expect(() => producer.queue(job.queue)).toThrow(JobsClosedError)
  })

  it('a closed worker refuses run() with JobsClosedError', async () => {
    const job = defineJob({
      name: 'closed-worker',
      queue: uniqueName('closed-worker-'),
      schema: z.object({ n: z.number() }),
      handler: () => {},
    })
    const worker = createWorker({ connection: env.redis, jobs: [job], autorun: false, cancellation: false })
    await worker.close()
    expect(() => worker.run()).toThrow(JobsClosedError)
  })

  it('errors carry their cause and what they are about', () => {
    const cause = new Error('card refused')
    const error = new PermanentError('payment failed', { cause })
    expect(error.cause).toBe(cause)
    expect(error.code).toBe('E_JOBS_PERMANENT')
    expect(error.context).toEqual({})
  })
})
