import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createReplicatedKysely,
  type ReplicatedKysely,
  type RouteEvent,
  WritesPreventedError,
} from '../src/index.js'
import { type Database, pool, replicatedDb, useSeededReplicas } from './helpers.js'

describe('outside user (tester 4): raw statements declared reads with db.replica()', () => {
  const seeded = useSeededReplicas()

  describe('preventWrites', () => {
    let db: ReplicatedKysely<Database>

    beforeAll(async () => {
      // No replicas ("[] works too: all on the primary"): whatever passes the check runs on the primary.
      db = createReplicatedKysely<Database>({ primary: pool(seeded.cluster.primary), replicas: [] })
      await db.router.ready()
    })

    afterAll(async () => {
      await db?.destroy()
    })

    it('COMMENT ON (a catalog write) under preventWrites throws WritesPreventedError and writes nothing', async () => {
      const comment = sql`comment on table item is 'written under preventWrites'`
      await expect(
        db.router.preventWrites(() => comment.execute(db.replica({ preventWrites: true }))),
      ).rejects.toBeInstanceOf(WritesPreventedError)
      const [row] = await seeded.cluster.primary.query<{ d: string | null }>(
        `select obj_description('item'::regclass) as d`,
      )
      expect(row?.d).toBeNull()
    })
  })

  describe('session-changing statements', () => {
    let db: ReplicatedKysely<Database>

    beforeAll(async () => {
      // One replica with a one-connection pool, so the next read reuses that connection.
      const replica = seeded.cluster.replicas[0]
      if (!replica) throw new Error('no replica')
      db = replicatedDb(seeded.cluster, {
        replicas: [{ pool: pool(replica, 1), name: replica.name }],
        rywWaitMs: 2_000,
      })
      await db.router.ready()
    })

    afterAll(async () => {
      await db?.destroy()
    })

    it('START TRANSACTION through db.replica() is not run on a replica: no replica connection is left in a frozen snapshot', async () => {
      const events: RouteEvent[] = []
      const off = db.router.on('route', (event) => events.push(event))
      await sql.raw('start transaction isolation level repeatable read').execute(db.replica())
      await sql`select count(*) from item`.execute(db.replica())
      off()
      // Not run on the replica: its one pooled connection is not left inside a transaction.
      expect(events[0]?.role).toBe('primary')
      const replica = seeded.cluster.replicas[0]!
      const open = await replica.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where state like 'idle in transaction%'`,
      )
      expect(open).toEqual([{ n: 0 }])
      // Reads on that connection see rows committed after it: no frozen snapshot.
      for (let i = 0; i < 3; i++) {
        const value = `tester4-${i}`
        await seeded.cluster.primary.query('insert into item (value) values ($1)', [value])
        await seeded.cluster.waitForReplication()
        const rows = await db
          .replica()
          .selectFrom('item')
          .select('value')
          .where('value', '=', value)
          .execute()
        expect(rows).toEqual([{ value }])
      }
      // (Through the primary it is the same footgun as with any pooled Kysely: a transaction opened by a
      // raw statement stays open on one pooled connection. Use db.transaction().)
    })
  })
})
