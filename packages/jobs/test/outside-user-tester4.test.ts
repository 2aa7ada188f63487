import { createHash } from 'node:crypto'
import { waitFor } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import { sql } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  type AnyJobDefinition,
  createDeadLetterQueue,
  createOutbox,
  createProducer,
  createWorker,
  defineJob,
  InvalidPayloadError,
  JobsOptionsError,
} from '../src/index.js'
import { jobsClient, useOutboxDb } from './helpers.js'

const postgres = useOutboxDb()
const env = useRedis({ connect: jobsClient })

beforeAll(async () => {
  await createOutbox().createTable(postgres.db)
})

/**
 * `outbox.enqueue` inside a transaction that then runs the caller's own statement: what the enqueue
 * threw, and what the caller's statement gave (1, or the error of an aborted transaction).
 */
async function enqueueInTransaction(job: AnyJobDefinition, payload: unknown) {
  let thrown: unknown
  let afterwards: unknown
  await postgres.db
    .transaction()
    .execute(async (trx) => {
      try {
        await createOutbox().enqueue(trx, job, payload as never)
      } catch (error) {
        thrown = error
      }
      afterwards = (await sql<{ one: number }>`select 1 as one`.execute(trx)).rows[0]?.one
    })
    .catch((error: unknown) => {
      afterwards = error
    })
  return { thrown, afterwards }
}

describe('outside users (testers 4 and 5)', () => {
  it('two different idempotency keys make two jobs, even when one key is 40 hex digits', async () => {
    const queue = uniqueName('idem-hex-')
    const job = defineJob({ name: 'welcome', queue, schema: z.object({ to: z.string() }), handler: () => {} })
    const producer = createProducer({ connection: env.redis })
    // A key with characters outside [A-Za-z0-9_.-] (an e-mail) is hashed into the job ID; a key that
    // happens to be those 40 hex digits (a client-chosen Idempotency-Key header) is used as is.
    const emailKey = 'ada@example.com'
    const hexKey = createHash('sha256').update(emailKey).digest('hex').slice(0, 40)
    const first = await producer.enqueue(job, { to: 'ada' }, { idempotencyKey: emailKey })
    const second = await producer.enqueue(job, { to: 'eve' }, { idempotencyKey: hexKey })
    expect(second.id).not.toBe(first.id)
    expect(await producer.queue(queue).getWaitingCount()).toBe(2)
    await producer.close()
  })

  it('two jobs sharing a queue make two jobs when one name plus its key spells the other name plus its key', async () => {
    const queue = uniqueName('idem-names-')
    const schema = z.object({ userId: z.number() })
    const user = defineJob({ name: 'user', queue, schema, handler: () => {} })
    const userDeleted = defineJob({ name: 'user-deleted', queue, schema, handler: () => {} })
    const producer = createProducer({ connection: env.redis })
    const first = await producer.enqueue(user, { userId: 42 }, { idempotencyKey: 'deleted-42' })
    const second = await producer.enqueue(userDeleted, { userId: 42 }, { idempotencyKey: '42' })
    expect(second.id).not.toBe(first.id)
    expect(await producer.queue(queue).getWaitingCount()).toBe(2)
    await producer.close()
  })

  it.each([
    ['a NUL character', 'a\u0000b'],
    ['a lone surrogate', 'a\ud800b'],
  ])(
    'outbox.enqueue of a payload with %s that producer.enqueue accepts: stored, or refused with InvalidPayloadError without aborting the transaction',
    async (_, text) => {
      const queue = uniqueName('outbox-text-')
      const job = defineJob({
        name: 'note',
        queue,
        schema: z.object({ text: z.string() }),
        handler: () => {},
      })
      const producer = createProducer({ connection: env.redis })
      await expect(producer.enqueue(job, { text })).resolves.toMatchObject({ queue })
      // The caller's own work in the same transaction must still run.
      const { thrown, afterwards } = await enqueueInTransaction(job, { text })
      if (thrown !== undefined) expect(thrown).toBeInstanceOf(InvalidPayloadError)
      expect(afterwards).toBe(1)
      await producer.close()
    },
  )

  it('an idempotencyKey that is not a non-empty string, and options that are not an object, are refused with JobsOptionsError and enqueue nothing', async () => {
    const queue = uniqueName('idem-type-')
    const job = defineJob({ name: 'ping', queue, schema: z.object({}), handler: () => {} })
    const producer = createProducer({ connection: env.redis })
    const outbox = createOutbox()
    const refusals = [
      producer.enqueue(job, {}, { idempotencyKey: {} as never }),
      producer.enqueue(job, {}, { idempotencyKey: '' }),
      producer.enqueue(job, {}, null as never),
      outbox.enqueue(postgres.db, job, {}, { idempotencyKey: 42 as never }),
    ].map((call) =>
      call.then(
        () => 'enqueued',
        (error: unknown) => error,
      ),
    )
    const outcomes = await Promise.all(refusals)
    expect(outcomes.map((outcome) => outcome instanceof JobsOptionsError)).toEqual([true, true, true, true])
    expect(await producer.queue(queue).getWaitingCount()).toBe(0)
    await producer.close()
  })

  it('a key enqueued after a redrive makes its own job, even when it spells the redriven job ID (key + "-r" + failedAt)', async () => {
    const queue = uniqueName('idem-redrive-')
    const job = defineJob({
      name: 'note',
      queue,
      schema: z.object({ n: z.number() }),
      retry: { attempts: 1 },
      handler: ({ n }) => {
        if (n === 1) throw new Error('upstream down')
      },
    })
    const producer = createProducer({ connection: env.redis })
    const worker = createWorker({ connection: env.redis, jobs: [job] })
    const dlq = createDeadLetterQueue({ connection: env.redis, queue, jobs: [job] })
    await producer.enqueue(job, { n: 1 }, { idempotencyKey: 'order-7' })
    await waitFor('dead-lettered', async () => (await dlq.count()) === 1)
    await worker.close()
    const [entry] = await dlq.list()
    const { redriven } = await dlq.redrive()
    expect(redriven).toHaveLength(1)
    // A different key of the same job (say, revision 'r<timestamp>' of another order's key).
    const other = await producer.enqueue(job, { n: 2 }, { idempotencyKey: `order-7-r${entry?.failedAt}` })
    expect(other.id).not.toBe(redriven[0]?.jobId)
    expect(await producer.queue(queue).getWaitingCount()).toBe(2)
    await dlq.close()
    await producer.close()
  })

  it.each([
    ['undefined', undefined],
    ['a function', () => 1],
    ['a BigInt', { n: 1n }],
  ])(
    'outbox.enqueue of %s for a validate:false job is refused with InvalidPayloadError and leaves the transaction usable',
    async (_, payload) => {
      const queue = uniqueName('outbox-loose-')
      const job = defineJob({ name: 'loose', queue, schema: z.any(), validate: false, handler: () => {} })
      const { thrown, afterwards } = await enqueueInTransaction(job, payload)
      expect(thrown).toBeInstanceOf(InvalidPayloadError)
      expect(afterwards).toBe(1)
    },
  )
})
