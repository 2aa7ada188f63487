import { waitFor } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import { Queue } from 'bullmq'
import { afterAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createOutbox,
  createOutboxRelay,
  defineJob,
  EnqueueTimeoutError,
  OutboxRelayError,
} from '../src/index.js'
import { connect, jobsClient, useOutboxDb } from './helpers.js'

const postgres = useOutboxDb()
const env = useRedis({ connect: jobsClient })
afterAll(() => {
  env.server.resume()
})

describe('outbox relay with Redis frozen', () => {
  it('a batch fails with a typed error by the deadline, keeps its rows, stop() returns; after Redis is back exactly the rows are relayed', async () => {
    const { db } = postgres
    const queue = uniqueName('relay-frozen-')
    const job = defineJob({ name: 'mail', queue, schema: z.object({ n: z.number() }), handler: () => {} })
    const outbox = createOutbox({ table: `frozen_${queue.replace(/-/g, '_')}` })
    await outbox.createTable(db)
    await db.transaction().execute((trx) =>
      outbox.enqueueMany(
        trx,
        job,
        Array.from({ length: 20 }, (_, n) => ({ payload: { n } })),
      ),
    )
    const redis = connect(env.server.port)
    const relay = createOutboxRelay({ db, connection: redis, table: outbox.table, enqueueTimeoutMs: 400 })
    // Warm: queue open, scripts loaded; moves the 20 rows (retried if the 400 ms deadline catches the
    // first connection on a loaded machine).
    await waitFor('the warm-up batch', () => relay.relayOnce().catch(() => 0), { timeoutMs: 30_000 })
    await db.transaction().execute((trx) =>
      outbox.enqueueMany(
        trx,
        job,
        Array.from({ length: 20 }, (_, n) => ({ payload: { n: 100 + n } })),
      ),
    )
    env.server.pause()
    let outcome: unknown
    void relay.relayOnce().then(
      (moved) => {
        outcome = moved
      },
      (error: unknown) => {
        outcome = error
      },
    )
    await waitFor('the batch to settle', () => outcome !== undefined, { timeoutMs: 30_000 })
    expect(outcome).toBeInstanceOf(OutboxRelayError)
    expect((outcome as OutboxRelayError).cause).toBeInstanceOf(EnqueueTimeoutError)
    // The rows stayed (the transaction rolled back), and no lock is held on them.
    const left = await db
      .selectFrom(outbox.table as never)
      .select(db.fn.countAll().as('n'))
      .executeTakeFirst()
    expect(Number((left as { n: string }).n)).toBe(20)

    env.server.resume()
    // The first batch after SIGCONT may itself time out on a loaded machine (it is retried, as the
    // relay's loop would): it moves the 20 rows once.
    const moved = await waitFor('the batch to be relayed', () => relay.relayOnce().catch(() => 0), {
      timeoutMs: 30_000,
    })
    expect(moved).toBe(20)
    const check = new Queue(queue, { connection: redis, prefix: '{jobs}' })
    // The timed-out add may have landed once Redis woke; the re-add under the same IDs makes no duplicate.
    expect(await check.getWaitingCount()).toBe(40)
    await check.obliterate({ force: true })
    await check.close()

    // stop() is bounded even with Redis frozen again.
    env.server.pause()
    let stopped = false
    void relay.close().then(() => {
      stopped = true
    })
    await waitFor('stop to return', () => stopped, { timeoutMs: 30_000 })
    env.server.resume()
    redis.disconnect()
  })
})
