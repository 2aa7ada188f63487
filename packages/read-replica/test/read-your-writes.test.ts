import type { PostgresCluster } from '@scale/testkit'
import { usePostgres } from '@scale/testkit/vitest'
import { type ExpressionBuilder, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MalformedTokenError, type ReplicatedKysely, type RouteEvent } from '../src/index.js'
import { type Database, portNames, replicatedDb, SCHEMA } from './helpers.js'

const APPLY_DELAY_MS = 300
const PAIRS = 1_000
const BATCH = 100

/** Runs `pairs` tasks, `BATCH` at a time (a 300 ms delay per pair would take minutes serially). */
async function inBatches(
  pairs: number,
  task: (index: number) => Promise<void>,
  batch = BATCH,
): Promise<void> {
  for (let start = 0; start < pairs; start += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, pairs - start) }, (_, i) => task(start + i)))
  }
}

function tally(events: readonly RouteEvent[], filter: (e: RouteEvent) => boolean): Record<string, number> {
  const out: Record<string, number> = {}
  for (const event of events.filter(filter)) out[event.reason] = (out[event.reason] ?? 0) + 1
  return out
}

describe(`read-your-writes with recovery_min_apply_delay = ${APPLY_DELAY_MS} ms on every replica`, () => {
  const postgres = usePostgres({ replicas: 2 })
  let cluster: PostgresCluster
  const dbs: ReplicatedKysely<Database>[] = []
  const open = (options: Parameters<typeof replicatedDb>[1]) => {
    const db = replicatedDb(cluster, { ...options })
    dbs.push(db)
    return db
  }

  beforeAll(async () => {
    cluster = postgres.cluster
    await cluster.primary.query(SCHEMA)
    await cluster.primary.query(
      `create function my_writer_fn(v text) returns bigint language sql volatile as
        $$ insert into item (value) values (v) returning id $$`,
    )
    await cluster.waitForReplication()
    await Promise.all(cluster.replicas.map((replica) => replica.setApplyDelay(APPLY_DELAY_MS)))
  })

  afterAll(async () => {
    await Promise.all(dbs.map((db) => db.destroy()))
  })

  const writeThenRead = async (
    writer: ReplicatedKysely<Database>,
    reader: ReplicatedKysely<Database>,
    value: string,
  ) => {
    const { id } = await writer.insertInto('item').values({ value }).returning('id').executeTakeFirstOrThrow()
    const row = await reader.selectFrom('item').select('value').where('id', '=', id).executeTakeFirst()
    return row?.value === value
  }

  it(`${PAIRS} write-then-read pairs, each in one request context: 0 stale reads`, async () => {
    const db = open({ rywWaitMs: 2_000 })
    const events: RouteEvent[] = []
    db.router.on('route', (event) => events.push(event))
    await db.router.ready()
    let stale = 0
    await inBatches(PAIRS, (i) =>
      db.router.run(undefined, async () => {
        if (!(await writeThenRead(db, db, `ctx-${i}`))) stale++
      }),
    )
    const reads = tally(events, (e) => e.queryKind === 'SelectQueryNode')
    expect(stale).toBe(0)
    expect(Object.values(reads).reduce((a, b) => a + b, 0)).toBe(PAIRS)
    // With a 2 s budget the reads waited for a replica to replay their write instead of all
    // going to the primary: the replicas really served read-your-writes reads.
    expect(reads['ryw-wait'] ?? 0).toBeGreaterThan(0)
  })

  it(`${PAIRS} pairs across requests and services (token carried in a cookie): 0 stale reads`, async () => {
    const web = open({})
    const otherService = open({ rywWaitMs: 100 })
    const events: RouteEvent[] = []
    otherService.router.on('route', (event) => events.push(event))
    await Promise.all([web.router.ready(), otherService.router.ready()])
    let stale = 0
    await inBatches(PAIRS, async (i) => {
      const value = `req-${i}`
      // Request 1 writes and hands out its token as a cookie.
      const cookie = await web.router.run(undefined, async () => {
        const { id } = await web
          .insertInto('item')
          .values({ value })
          .returning('id')
          .executeTakeFirstOrThrow()
        return `consistency=${encodeURIComponent(web.router.token() ?? '')}; id=${id}`
      })
      const [token, id] = cookie.split('; ').map((part) => decodeURIComponent(part.split('=')[1] ?? ''))
      // Request 2, in another process in real life: a separate router instance reads with it.
      await otherService.router.run(token, async () => {
        const row = await otherService
          .selectFrom('item')
          .select('value')
          .where('id', '=', Number(id))
          .executeTakeFirst()
        if (row?.value !== value) stale++
      })
    })
    const reads = tally(events, () => true)
    expect(stale).toBe(0)
    // Every read carried a position: none was routed as a plain, position-less read.
    expect(reads.read ?? 0).toBe(0)
  })

  it(`control: the same ${PAIRS} pairs with plain random routing show stale reads`, async () => {
    const db = open({ readYourWrites: false, balance: 'random' })
    await db.router.ready()
    let stale = 0
    await inBatches(PAIRS, (i) =>
      db.router.run(undefined, async () => {
        if (!(await writeThenRead(db, db, `control-${i}`))) stale++
      }),
    )
    expect(stale).toBeGreaterThan(0)
  })

  it('writes in a transaction and in db.connection() give the context a position at commit', async () => {
    const db = open({ rywWaitMs: 0 })
    await db.router.ready()
    let stale = 0
    await inBatches(100, (i) =>
      db.router.run(undefined, async () => {
        const id = await db.transaction().execute(async (trx) => {
          const row = await trx
            .insertInto('item')
            .values({ value: `trx-${i}` })
            .returning('id')
            .executeTakeFirstOrThrow()
          return row.id
        })
        const afterTrx = await db.selectFrom('item').select('id').where('id', '=', id).executeTakeFirst()
        const id2 = await db.connection().execute(async (conn) => {
          const row = await conn
            .insertInto('item')
            .values({ value: `conn-${i}` })
            .returning('id')
            .executeTakeFirstOrThrow()
          return row.id
        })
        const afterConn = await db.selectFrom('item').select('id').where('id', '=', id2).executeTakeFirst()
        if (!afterTrx || !afterConn) stale++
      }),
    )
    expect(stale).toBe(0)
  })

  it('a write made by a function (auto, db.primary(), raw, transaction, connection()) gives the context its position', async () => {
    const db = open({})
    await db.router.ready()
    const writer = (value: string) => (eb: ExpressionBuilder<Database, never>) =>
      eb.fn<string>('my_writer_fn', [sql.val(value)]).as('id')
    const ways: Record<string, (value: string) => Promise<string | undefined>> = {
      auto: async (v) => (await db.selectNoFrom(writer(v)).executeTakeFirst())?.id,
      primary: async (v) => (await db.primary().selectNoFrom(writer(v)).executeTakeFirst())?.id,
      raw: async (v) => (await sql<{ id: string }>`select my_writer_fn(${v}) as id`.execute(db)).rows[0]?.id,
      transaction: (v) =>
        db.transaction().execute(async (trx) => (await trx.selectNoFrom(writer(v)).executeTakeFirst())?.id),
      // the read runs before the connection is released: the position is taken right after the statement
      connection: (v) =>
        db.connection().execute(async (conn) => {
          const id = (await conn.selectNoFrom(writer(v)).executeTakeFirst())?.id
          return (await readBack(id)) ? id : undefined
        }),
    }
    const readBack = async (id: string | undefined) =>
      id !== undefined &&
      (await db.selectFrom('item').select('id').where('id', '=', Number(id)).executeTakeFirst()) !== undefined
    const stale: Record<string, number> = {}
    for (const [way, write] of Object.entries(ways)) {
      stale[way] = 0
      // 5 at a time: a held connection() plus its read may need two of the pool's 10 connections
      await inBatches(
        30,
        (i) =>
          db.router.run(undefined, async () => {
            const id = await write(`fn-${way}-${i}`)
            if (!(await readBack(id))) stale[way] = (stale[way] ?? 0) + 1
          }),
        5,
      )
    }
    expect(stale).toEqual({ auto: 0, primary: 0, raw: 0, transaction: 0, connection: 0 })
  })

  it('a wait known to be futile is skipped: reads go to the primary at once, never stale', async () => {
    const pair = async (db: ReplicatedKysely<Database>, i: number) =>
      db.router.run(undefined, () => writeThenRead(db, db, `skip-${i}`))
    const short = open({ rywWaitMs: 50 }) // replicas are 300 ms behind: a 50 ms wait cannot succeed
    const long = open({ rywWaitMs: 2_000 }) // a 2 s wait can
    await Promise.all([short.router.ready(), long.router.ready()])
    for (let i = 0; i < 10; i++) await pair(short, i) // the router observes the replicas' delay
    for (let i = 0; i < 5; i++) await pair(long, i)
    const before = [short.router.metrics(), long.router.metrics()]
    let stale = 0
    for (let i = 0; i < 20; i++) {
      if (!(await pair(short, 100 + i))) stale++
      if (!(await pair(long, 100 + i))) stale++
    }
    const [shortAfter, longAfter] = [short.router.metrics(), long.router.metrics()]
    expect(stale).toBe(0)
    expect(shortAfter.rywWaitsSkipped - (before[0]?.rywWaitsSkipped ?? 0)).toBeGreaterThan(0)
    expect(longAfter.rywWaitsSkipped - (before[1]?.rywWaitsSkipped ?? 0)).toBe(0)
    expect((longAfter.byReason['ryw-wait'] ?? 0) - (before[1]?.byReason['ryw-wait'] ?? 0)).toBeGreaterThan(0)
  })

  it('a COMMIT whose connection dies leaves the context reading from the primary (the commit may have landed)', async () => {
    const db = open({})
    const events: RouteEvent[] = []
    db.router.on('route', (event) => events.push(event))
    await db.router.ready()
    const names = portNames(cluster)
    await db.router.run(undefined, async () => {
      const trx = await db.startTransaction().execute()
      await trx.insertInto('item').values({ value: 'commit-outcome-unknown' }).execute()
      const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)
      await cluster.primary.query('select pg_terminate_backend($1)', [rows[0]?.pid])
      await expect(trx.commit().execute()).rejects.toThrow()
      await trx
        .rollback()
        .execute()
        .catch(() => {}) // releases the dead connection
      const row = await db.selectNoFrom(sql<number>`inet_server_port()`.as('port')).executeTakeFirstOrThrow()
      expect(names.get(row.port)).toBe('primary')
      expect(events[events.length - 1]?.reason).toBe('ryw-invalid-token')
    })
  })

  it('outside any context, the process-wide position keeps reads fresh (outsideContext: process)', async () => {
    const db = open({ rywWaitMs: 0 })
    await db.router.ready()
    let stale = 0
    await inBatches(100, async (i) => {
      if (!(await writeThenRead(db, db, `process-${i}`))) stale++
    })
    expect(stale).toBe(0)
  })

  it('an unsigned token claiming a far-future position: reads wait at most the budget, then the primary; a write replaces it', async () => {
    const db = open({ rywWaitMs: 100 })
    const events: RouteEvent[] = []
    db.router.on('route', (event) => events.push(event))
    await db.router.ready()
    const names = portNames(cluster)
    const forged = '1.7fffffffffffffff' // well-formed, so accepted without tokenSecret
    await db.router.run(forged, async () => {
      for (let i = 0; i < 3; i++) {
        const row = await db
          .selectNoFrom(sql<number>`inet_server_port()`.as('port'))
          .executeTakeFirstOrThrow()
        expect(names.get(row.port)).toBe('primary')
        expect(events[events.length - 1]).toMatchObject({ reason: 'ryw-primary', role: 'primary' })
      }
      expect(db.router.token()).toBe(forged)
      // The write's position, read on the primary, proves the token's position impossible.
      await db.insertInto('item').values({ value: 'after-forged-token' }).execute()
      const token = db.router.token() as string
      expect(BigInt(`0x${token.slice(2)}`)).toBeLessThan(BigInt(`0x${forged.slice(2)}`))
    })
  })

  it('a malformed, tampered or unsigned token never throws and sends reads to the primary', async () => {
    const db = open({ tokenSecret: 'test-secret' })
    const events: RouteEvent[] = []
    db.router.on('route', (event) => events.push(event))
    await db.router.ready()
    const names = portNames(cluster)
    const good = await db.router.run(undefined, async () => {
      await db.insertInto('item').values({ value: 'signed' }).execute()
      return db.router.token() as string
    })
    expect(db.router.parseToken(good)).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/)
    const flipped = `${good.slice(0, 4)}${good[4] === 'f' ? 'e' : 'f'}${good.slice(5)}`
    const unsigned = good.split('.').slice(0, 2).join('.')
    const garbage = [
      flipped,
      unsigned,
      'garbage',
      '1.',
      '1.zzzzzzzzzzzzzzzz',
      'x'.repeat(10_000),
      '\u0000',
      '1.ffffffffffffffff',
      '1.ffffffffffffffff.AAAAAAAAAAAAAAAAAAAAAA', // far-future position, forged signature
    ]
    for (const token of garbage) {
      const row = await db.router.run(token, () =>
        db
          .selectFrom('item')
          .select(sql<number>`inet_server_port()`.as('port'))
          .limit(1)
          .executeTakeFirstOrThrow(),
      )
      expect(names.get(row.port), token.slice(0, 20)).toBe('primary')
      expect(events[events.length - 1]?.reason).toBe('ryw-invalid-token')
    }
    expect(() => db.router.parseToken(flipped)).toThrow(MalformedTokenError)
    expect(() => db.router.parseToken('garbage')).toThrow(
      expect.objectContaining({ code: 'E_REPLICA_TOKEN_MALFORMED' }),
    )
    // A context that writes after a bad token gets a fresh, valid position again.
    const fresh = await db.router.run('garbage', async () => {
      await db.insertInto('item').values({ value: 'after-garbage' }).execute()
      return db.router.token()
    })
    expect(fresh && db.router.parseToken(fresh)).toBeTruthy()
  })
})
