import { waitFor } from '@scale/testkit'
import { uniqueName, usePostgres, useRedis } from '@scale/testkit/vitest'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createDeadLetterQueue,
  createOutbox,
  createProducer,
  createWorker,
  defineJob,
  InvalidPayloadError,
} from '../src/index.js'
import { jobsClient } from './helpers.js'

const postgres = usePostgres()
const env = useRedis({ connect: jobsClient })
let db: Kysely<Record<string, never>>

beforeAll(async () => {
  const pool = new pg.Pool({ ...postgres.primary.connection, max: 4 })
  pool.on('error', () => {})
  db = new Kysely({ dialect: new PostgresDialect({ pool }) })
  await createOutbox().createTable(db)
})

afterAll(async () => {
  await db?.destroy()
})

describe('outside user (tester 5)', () => {
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
      const outbox = createOutbox()
      let thrown: unknown
      let afterwards: unknown
      await db
        .transaction()
        .execute(async (trx) => {
          try {
            await outbox.enqueue(trx, job, payload)
          } catch (error) {
            thrown = error
          }
          afterwards = (await sql<{ one: number }>`select 1 as one`.execute(trx)).rows[0]?.one
        })
        .catch((error: unknown) => {
          afterwards = error
        })
      expect(thrown).toBeInstanceOf(InvalidPayloadError)
      expect(afterwards).toBe(1)
    },
  )
})
