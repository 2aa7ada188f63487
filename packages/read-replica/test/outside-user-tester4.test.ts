import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createReplicatedKysely,
  type ReplicatedKysely,
  type RouteEvent,
  WritesPreventedError,
} from '../src/index.js'
import { type Database, pool, replicatedDb, useSeededReplicas } from './helpers.js'

describe('outside users (testers 4 and 5): raw statements declared reads with db.replica()', () => {
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

    it('ANALYSE (the British spelling PostgreSQL accepts for ANALYZE) under preventWrites throws WritesPreventedError', async () => {
      await expect(
        db.router.preventWrites(() => sql`analyse item`.execute(db.replica({ preventWrites: true }))),
      ).rejects.toBeInstanceOf(WritesPreventedError)
    })

    it('REASSIGN OWNED (a catalog write) under preventWrites throws WritesPreventedError', async () => {
      await expect(
        db.router.preventWrites(() =>
          sql`reassign owned by current_user to current_user`.execute(db.replica({ preventWrites: true })),
        ),
      ).rejects.toBeInstanceOf(WritesPreventedError)
    })

    it('a statement hidden after a "--" comment ended by a carriage return under preventWrites throws WritesPreventedError', async () => {
      // PostgreSQL ends a "--" comment at \r as well as at \n: the server runs what follows.
      await expect(
        db.router.preventWrites(() =>
          sql
            .raw("select 1 -- note\r; comment on table item is 'tester5'")
            .execute(db.replica({ preventWrites: true })),
        ),
      ).rejects.toBeInstanceOf(WritesPreventedError)
      const [row] = await seeded.cluster.primary.query<{ d: string | null }>(
        `select obj_description('item'::regclass) as d`,
      )
      expect(row?.d).toBeNull()
    })
    it('a statement after a dollar-quoted string whose tag is longer than 62 characters under preventWrites throws WritesPreventedError', async () => {
      // PostgreSQL sees a string, then SET; the scan (tags up to 62 characters) sees one string to the end.
      const tag = `$${'t'.repeat(70)}$`
      await expect(
        db.router.preventWrites(() =>
          sql
            .raw(`select ${tag}'${tag}; set search_path to public; select 1 --'`)
            .execute(db.replica({ preventWrites: true })),
        ),
      ).rejects.toBeInstanceOf(WritesPreventedError)
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

    it.each([
      ['start-plain', 'start transaction isolation level repeatable read'],
      // PostgreSQL ends a "--" comment at \r as well as at \n: the statement follows it.
      ['start-after-cr', '-- begin a report\rstart transaction isolation level repeatable read'],
    ])(
      'START TRANSACTION through db.replica() (%s) is not run on a replica: no replica connection is left in a frozen snapshot',
      async (label, statement) => {
        const events: RouteEvent[] = []
        const off = db.router.on('route', (event) => events.push(event))
        await sql.raw(statement).execute(db.replica())
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
          const value = `${label}-${i}`
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
      },
    )
  })

  describe('reads of columns named like statement keywords', () => {
    let db: ReplicatedKysely<Database>
    const events: RouteEvent[] = []

    beforeAll(async () => {
      await seeded.cluster.primary.query(
        `create table if not exists host_stat (host text, load real, release text); insert into host_stat values ('a', 0.5, '1.2')`,
      )
      await seeded.cluster.waitForReplication()
      db = replicatedDb(seeded.cluster, { outsideContext: 'none' })
      db.router.on('route', (event) => events.push(event))
      await db.router.ready()
    })

    afterAll(async () => {
      await db?.destroy()
    })

    it.each([
      'select host, load from host_stat',
      'select host, release from host_stat',
      'select host as lock from host_stat',
    ])('%s through db.replica() runs on a replica (like `select comment from t`)', async (text) => {
      const before = events.length
      await sql.raw(text).execute(db.replica())
      expect(events.slice(before).map((event) => event.role)).toEqual(['replica'])
    })
  })
})
