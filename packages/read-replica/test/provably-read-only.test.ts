import type { PostgresCluster } from '@scale/testkit'
import { usePostgres } from '@scale/testkit/vitest'
import fc from 'fast-check'
import {
  type AliasableExpression,
  type ExpressionBuilder,
  type QueryCreator,
  type RawBuilder,
  sql,
} from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ReplicatedKysely, RouteEvent } from '../src/index.js'
import { type Database, portNames, replicatedDb, SCHEMA } from './helpers.js'

// Only a provably read-only query may run on a replica: every function it calls is known
// read-only and no fragment holds a statement that writes or changes the session.
const FUNCTIONS = `
create sequence item_seq;
create function my_writer_fn(v text) returns bigint language sql volatile as
  $$ insert into item (value) values (v) returning id $$;
create function my_reader_fn() returns bigint language sql volatile as $$ select count(*) from item $$;
create function "Undeclared_Reader"() returns int language sql volatile as $$ select 1 $$;
create function my_lying_fn() returns bigint language sql stable as $$ select 1::bigint $$;
`

describe('only provably read-only queries reach a replica (server-side proof)', () => {
  const postgres = usePostgres({ replicas: 2 })
  let cluster: PostgresCluster
  let db: ReplicatedKysely<Database>
  let names: Map<number, string>
  const events: RouteEvent[] = []
  const where = (p: number | undefined) => names.get(Number(p))

  beforeAll(async () => {
    cluster = postgres.cluster
    await cluster.primary.query(SCHEMA)
    await cluster.primary.query(`insert into item (value) select 'seed-' || g from generate_series(1, 20) g`)
    await cluster.primary.query(FUNCTIONS)
    await cluster.waitForReplication()
    names = portNames(cluster)
    db = replicatedDb(cluster, {
      outsideContext: 'none',
      readOnlyFunctions: ['my_reader_fn'],
      writingFunctions: ['my_lying_fn'],
    })
    db.router.on('route', (event) => events.push(event))
    await db.router.ready()
  })

  afterAll(async () => {
    await db?.destroy()
  })

  /** Runs `query` and returns the route of its (single) statement. */
  async function routeOf(run: () => Promise<unknown>): Promise<RouteEvent> {
    const before = events.length
    await run()
    const fresh = events.slice(before)
    expect(fresh).toHaveLength(1)
    return fresh[0] as RouteEvent
  }

  it('advisory lock and unlock both run on the primary (the unlock finds the lock)', async () => {
    const single = replicatedDb(cluster, { outsideContext: 'none' })
    try {
      await single.router.ready()
      // one primary connection is enough to prove it: both calls must land on the same session
      const locked = await single.connection().execute(async (conn) => {
        await sql`select pg_advisory_lock(4242)`.execute(conn)
        return true
      })
      expect(locked).toBe(true)
      const unlocked = await single
        .selectNoFrom((eb) => [
          eb.fn<boolean>('pg_advisory_unlock', [sql.lit(4242)]).as('ok'),
          sql<number>`inet_server_port()`.as('port'),
        ])
        .executeTakeFirstOrThrow()
      expect(where(unlocked.port)).toBe('primary')
    } finally {
      await single.destroy()
    }
  })

  it('set_config() runs on the primary; no replica session keeps the setting', async () => {
    const event = await routeOf(() =>
      db.selectNoFrom(sql<string>`set_config('statement_timeout', '4321', false)`.as('v')).execute(),
    )
    expect(event).toMatchObject({ role: 'primary', reason: 'volatile-function', ok: true })
    const seen = new Set<string>()
    for (let i = 0; i < 20; i++) {
      const { rows } = await sql<{ v: string }>`select current_setting('statement_timeout') as v`.execute(
        db.replica(),
      )
      seen.add(String(rows[0]?.v))
    }
    expect(seen.has('4321ms')).toBe(false)
  })

  it('quoted, sql.raw and schema-qualified writing functions, lo_from_bytea and WAL messages → the primary', async () => {
    const queries: (() => Promise<unknown>)[] = [
      () => db.selectNoFrom(sql<number>`"nextval"('item_seq')`.as('n')).execute(),
      () => db.selectNoFrom(sql<number>`${sql.raw('nextval')}('item_seq')`.as('n')).execute(),
      () => db.selectNoFrom(sql<number>`pg_catalog.nextval('item_seq')`.as('n')).execute(),
      () => db.selectNoFrom((eb) => eb.fn<number>('NEXTVAL', [sql.lit('item_seq')]).as('n')).execute(),
      () => db.selectNoFrom(sql<number>`lo_from_bytea(0, '\\x01'::bytea)`.as('n')).execute(),
      () => db.selectNoFrom(sql<string>`pg_logical_emit_message(false, 'p', 'm')`.as('n')).execute(),
      () => db.selectNoFrom(sql<string>`txid_current()`.as('n')).execute(),
    ]
    for (const query of queries) {
      const event = await routeOf(query)
      expect(event).toMatchObject({ role: 'primary', reason: 'volatile-function', ok: true })
    }
  })

  it('a raw write CTE inside the builder → the primary; a harmless raw fragment stays on a replica', async () => {
    const event = await routeOf(() =>
      db
        .with('x', () => sql`(update item set value = value where id = 1 returning id)`)
        .selectFrom('x' as never)
        .selectAll()
        .execute(),
    )
    expect(event).toMatchObject({ role: 'primary', reason: 'write-cte', ok: true })
    const harmless = await db
      .selectFrom('item')
      .select(sql<number>`inet_server_port()`.as('port'))
      .where(sql<string>`lower(value)`, '=', 'seed-1')
      .executeTakeFirstOrThrow()
    expect(where(harmless.port)).toMatch(/^replica-/)
  })

  it('user declarations: a declared read-only function on a replica, a declared writing one on the primary', async () => {
    const reader = await db
      .selectNoFrom((eb) => [
        eb.fn<number>('my_reader_fn').as('n'),
        sql<number>`inet_server_port()`.as('port'),
      ])
      .executeTakeFirstOrThrow()
    expect(where(reader.port)).toMatch(/^replica-/)
    const lying = await db
      .selectNoFrom((eb) => [
        eb.fn<number>('my_lying_fn').as('n'),
        sql<number>`inet_server_port()`.as('port'),
      ])
      .executeTakeFirstOrThrow()
    expect(where(lying.port)).toBe('primary')
    // undeclared volatile user function: unknown, so the primary
    const writer = await db
      .selectNoFrom((eb) => [
        eb.fn<number>('my_writer_fn', [sql.lit('w')]).as('n'),
        sql<number>`inet_server_port()`.as('port'),
      ])
      .executeTakeFirstOrThrow()
    expect(where(writer.port)).toBe('primary')
  })

  it('function DDL through the router reloads the catalog: a function made volatile leaves the replicas', async () => {
    await sql`create function flip_fn() returns int language sql stable as $$ select 1 $$`.execute(db)
    await cluster.waitForReplication()
    const stable = await db
      .selectNoFrom((eb) => [eb.fn<number>('flip_fn').as('n'), sql<number>`inet_server_port()`.as('port')])
      .executeTakeFirstOrThrow()
    expect(where(stable.port)).toMatch(/^replica-/)
    await sql`create or replace function flip_fn() returns int language sql volatile as $$ select 2 $$`.execute(
      db,
    )
    await cluster.waitForReplication()
    const volatile = await db
      .selectNoFrom((eb) => [eb.fn<number>('flip_fn').as('n'), sql<number>`inet_server_port()`.as('port')])
      .executeTakeFirstOrThrow()
    expect(where(volatile.port)).toBe('primary')
  })

  it('a function call right after construction (no ready()) waits for the catalog, then a replica', async () => {
    const fresh = replicatedDb(cluster, { outsideContext: 'none' })
    try {
      const row = await fresh
        .selectFrom('item')
        .select(sql<number>`inet_server_port()`.as('port'))
        .where(sql<string>`lower(value)`, '=', 'seed-2')
        .executeTakeFirstOrThrow()
      expect(where(row.port)).toMatch(/^replica-/)
    } finally {
      await fresh.destroy()
    }
  })

  describe('property: generated builder trees with function calls and raw fragments', () => {
    // Each atom is one expression; `safe` says whether the router may prove it read-only. Raw
    // atoms also exist as text, to be placed in a raw statement run through db.replica().
    type Atom = {
      label: string
      safe: boolean
      expr: (eb: ExpressionBuilder<Database, 'item'>) => AliasableExpression<unknown>
      text?: () => RawBuilder<unknown>
    }
    const fn = (label: string, safe: boolean, expr: Atom['expr']): Atom => ({ label, safe, expr })
    const raw = (label: string, safe: boolean, text: () => RawBuilder<unknown>): Atom => ({
      label,
      safe,
      expr: () => text(),
      text,
    })
    const atoms: Atom[] = [
      fn('fn lower', true, (eb) => eb.fn('lower', ['value'])),
      fn('fn abs', true, (eb) => eb.fn('abs', ['id'])),
      fn('fn my_reader_fn (declared)', true, (eb) => eb.fn('my_reader_fn')),
      raw('raw lower', true, () => sql`lower(value)`),
      raw('raw quoted lower', true, () => sql`"lower"(value)`),
      raw('raw pg_catalog.upper', true, () => sql`pg_catalog.upper(value)`),
      raw('raw sql.raw upper', true, () => sql`${sql.raw('upper')}(value)`),
      raw('raw random', true, () => sql`random()`),
      raw('raw now', true, () => sql`now()`),
      raw('raw clock_timestamp', true, () => sql`clock_timestamp()`),
      raw('raw keyword in string', true, () => sql`length('update; set x')`),
      raw('raw keyword in comment', true, () => sql`/* delete from item */ 1`),
      raw('raw param', true, () => sql`length(${'nextval(1)'})`),
      fn('fn nextval', false, (eb) => eb.fn('nextval', [sql.lit('item_seq')])),
      fn('fn my_writer_fn', false, (eb) => eb.fn('my_writer_fn', [sql.lit('prop')])),
      fn('fn my_lying_fn (declared writing)', false, (eb) => eb.fn('my_lying_fn')),
      raw('raw quoted nextval', false, () => sql`"nextval"('item_seq')`),
      raw('raw sql.raw nextval', false, () => sql`${sql.raw('nextval')}('item_seq')`),
      raw('raw Mixed-case setval', false, () => sql`pg_catalog.SetVal('item_seq', 1000)`),
      raw('raw set_config', false, () => sql`set_config('application_name', 'leak', false)`),
      raw('raw advisory xact lock', false, () => sql`pg_try_advisory_xact_lock(7)`),
      raw('raw pg_notify', false, () => sql`pg_notify('ch', 'x')`),
      raw('raw txid_current', false, () => sql`txid_current()`),
      raw('raw undeclared volatile function (unknown)', false, () => sql`"Undeclared_Reader"()`),
    ]
    const placements = ['select', 'where', 'cte', 'subquery', 'raw-root'] as const
    type Part = { atom: Atom; placement: (typeof placements)[number] }
    const part = fc.record({ atom: fc.constantFrom(...atoms), placement: fc.constantFrom(...placements) })

    /** The query to run, and the atoms it really contains. */
    function buildQuery(parts: Part[]): { run: () => Promise<unknown>; included: Atom[] } {
      if (parts[0]?.placement === 'raw-root') {
        // raw SQL through db.replica() is judged like a select: declared a read, its calls still checked
        const included = parts.flatMap((p) => (p.atom.text ? [p.atom] : []))
        const texts = included.map((atom) => (atom.text as () => RawBuilder<unknown>)())
        const list = texts.length > 0 ? sql.join(texts) : sql`1`
        return { run: () => sql`select ${list} from item limit 1`.execute(db.replica()), included }
      }
      const ctes = parts.filter((p) => p.placement === 'cte').map((p) => p.atom)
      // the CTE 'c' is typed away: it is only referenced by name below
      const root: QueryCreator<Database> =
        ctes.length === 0
          ? db
          : (db.with('c', (qb) => {
              let inner = qb.selectFrom('item').select('id')
              for (const atom of ctes) inner = inner.where((eb) => eb(atom.expr(eb), 'is not', null))
              return inner
            }) as unknown as QueryCreator<Database>)
      let query = root.selectFrom('item').select('item.id').limit(1)
      if (ctes.length > 0)
        query = query.where('item.id', 'in', (eb) => eb.selectFrom('c' as 'item').select('id'))
      parts.forEach(({ atom, placement }, index) => {
        if (placement === 'select' || placement === 'raw-root')
          query = query.select((eb) => atom.expr(eb).as(`s${index}`))
        else if (placement === 'where') query = query.where((eb) => eb(atom.expr(eb), 'is not', null))
        else if (placement === 'subquery')
          query = query.where('item.id', 'in', (eb) =>
            eb
              .selectFrom('item')
              .select('id')
              .where((inner) => inner(atom.expr(inner), 'is not', null)),
          )
      })
      return { run: () => query.execute(), included: parts.map((p) => p.atom) }
    }

    it('no query that writes or changes session state lands on a replica; harmless ones do', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(part, { minLength: 1, maxLength: 4 }), async (parts) => {
          const { run, included } = buildQuery(parts)
          const before = events.length
          await run()
          const routed = events.slice(before)
          const safe = included.every((atom) => atom.safe)
          const last = routed[routed.length - 1]
          expect(last?.ok).toBe(true)
          // the safety property: nothing that is not provably read-only ever ran on a replica
          if (!safe) expect(routed.map((e) => e.role)).toEqual(['primary'])
          // and harmless queries do use the replicas (unless the monitor had excluded them all)
          else if (last?.reason !== 'no-replica') expect(routed.map((e) => e.role)).toEqual(['replica'])
        }),
        { numRuns: 200 },
      )
    })
  })
})
