import type { PostgresCluster } from '@scale/testkit'
import { usePostgres } from '@scale/testkit/vitest'
import { CamelCasePlugin, type Kysely, Migrator, sql } from 'kysely'
import Cursor from 'pg-cursor'
import * as promClient from 'prom-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createReplicatedKysely,
  promClientMetrics,
  ReadReplicaOptionsError,
  type ReplicatedKysely,
  type RouteEvent,
  WritesPreventedError,
} from '../src/index.js'
import { type Database, pool, portNames, replicatedDb, SCHEMA } from './helpers.js'

const port = sql<number>`inet_server_port()`

describe('routing by query kind (server-side proof with inet_server_port())', () => {
  const postgres = usePostgres({ replicas: 2 })
  let cluster: PostgresCluster
  let db: ReplicatedKysely<Database>
  let names: Map<number, string>
  const events: RouteEvent[] = []

  beforeAll(async () => {
    cluster = postgres.cluster
    await cluster.primary.query(SCHEMA)
    await cluster.primary.query(`insert into item (value) select 'seed-' || g from generate_series(1, 20) g`)
    await cluster.primary.query('create sequence item_seq')
    await cluster.waitForReplication()
    names = portNames(cluster)
    // 'none': outside a request context reads carry no position, so this file sees pure routing.
    db = replicatedDb(cluster, { outsideContext: 'none', balance: 'round-robin' })
    db.router.on('route', (event) => events.push(event))
    await db.router.ready()
  })

  afterAll(async () => {
    await db?.destroy()
  })

  const where = (p: number | undefined) => names.get(Number(p))
  const lastEvent = () => events[events.length - 1]

  it('select → a replica', async () => {
    const servers = new Set<string | undefined>()
    for (let i = 0; i < 6; i++) {
      const row = await db
        .selectFrom('item')
        .select(port.as('port'))
        .where('id', '=', 1)
        .executeTakeFirstOrThrow()
      servers.add(where(row.port))
      expect(lastEvent()).toMatchObject({ role: 'replica', reason: 'read', queryKind: 'SelectQueryNode' })
    }
    expect(servers).toEqual(new Set(['replica-1', 'replica-2'])) // round-robin uses both
  })

  it('insert / update / delete / merge → the primary', async () => {
    const inserted = await db
      .insertInto('item')
      .values({ value: 'w' })
      .returning(['id', 'port'])
      .executeTakeFirstOrThrow()
    expect(where(inserted.port)).toBe('primary')
    expect(lastEvent()).toMatchObject({ node: 'primary', reason: 'write' })

    const updated = await db
      .updateTable('item')
      .set({ value: 'w2' })
      .where('id', '=', inserted.id)
      .returning(port.as('server'))
      .executeTakeFirstOrThrow()
    expect(where(updated.server)).toBe('primary')

    const deleted = await db
      .deleteFrom('item')
      .where('id', '=', inserted.id)
      .returning(port.as('server'))
      .executeTakeFirstOrThrow()
    expect(where(deleted.server)).toBe('primary')

    // PostgreSQL 15 MERGE has no RETURNING: the inserted row's default column records the server.
    await db
      .mergeInto('item as t')
      .using(sql<{ v: string }>`(select 'merged' as v)`.as('s'), (join) => join.on(sql<boolean>`false`))
      .whenNotMatched()
      .thenInsertValues({ value: sql`s.v` })
      .execute()
    expect(lastEvent()).toMatchObject({ node: 'primary', reason: 'write', queryKind: 'MergeQueryNode' })
    const [merged] = await cluster.primary.query<{ port: number }>(
      `select port from item where value = 'merged'`,
    )
    expect(where(merged?.port)).toBe('primary')
  })

  it('DDL → the primary (a table created as select inet_server_port())', async () => {
    await db.schema
      .createTable('ddl_proof')
      .as(db.selectNoFrom(port.as('port')))
      .execute()
    expect(lastEvent()).toMatchObject({ node: 'primary', reason: 'ddl' })
    const [row] = await cluster.primary.query<{ port: number }>('select port from ddl_proof')
    expect(where(row?.port)).toBe('primary')
  })

  it('a select with a data-modifying CTE → the primary', async () => {
    const row = await db
      .with('ins', (qb) => qb.insertInto('item').values({ value: 'cte' }).returning(['id', 'port']))
      .selectFrom('ins')
      .select(['ins.port', port.as('server')])
      .executeTakeFirstOrThrow()
    expect(where(row.server)).toBe('primary')
    expect(where(row.port)).toBe('primary')
    expect(lastEvent()).toMatchObject({ node: 'primary', reason: 'write-cte' })
  })

  it('SELECT … FOR UPDATE / FOR SHARE → the primary', async () => {
    const forUpdate = await db
      .selectFrom('item')
      .select(port.as('server'))
      .where('id', '=', 1)
      .forUpdate()
      .executeTakeFirstOrThrow()
    expect(where(forUpdate.server)).toBe('primary')
    expect(lastEvent()).toMatchObject({ reason: 'locking' })
    const forShare = await db
      .selectFrom('item')
      .select(port.as('server'))
      .where('id', '=', 1)
      .forShare()
      .executeTakeFirstOrThrow()
    expect(where(forShare.server)).toBe('primary')
  })

  it('a select calling nextval() → the primary', async () => {
    const row = await db
      .selectNoFrom([sql<number>`nextval('item_seq')`.as('n'), port.as('server')])
      .executeTakeFirstOrThrow()
    expect(where(row.server)).toBe('primary')
    expect(lastEvent()).toMatchObject({ reason: 'volatile-function' })
  })

  it('every query of a transaction (even a read) → the primary, also with startTransaction()', async () => {
    const servers = await db.transaction().execute(async (trx) => {
      const read = await trx
        .selectFrom('item')
        .select(port.as('server'))
        .where('id', '=', 1)
        .executeTakeFirstOrThrow()
      const write = await trx
        .insertInto('item')
        .values({ value: 'trx' })
        .returning('port')
        .executeTakeFirstOrThrow()
      return [read.server, write.port]
    })
    expect(servers.map(where)).toEqual(['primary', 'primary'])
    expect(events.slice(-2).map((e) => e.reason)).toEqual(['transaction', 'transaction'])

    const trx = await db.startTransaction().execute()
    const read = await trx
      .selectFrom('item')
      .select(port.as('server'))
      .where('id', '=', 1)
      .executeTakeFirstOrThrow()
    await trx.commit().execute()
    expect(where(read.server)).toBe('primary')
  })

  it('a failed transaction rolls back on the primary', async () => {
    await expect(
      db.transaction().execute(async (trx) => {
        await trx.insertInto('item').values({ value: 'rolled-back' }).execute()
        throw new Error('abort')
      }),
    ).rejects.toThrow('abort')
    const rows = await cluster.primary.query(`select 1 from item where value = 'rolled-back'`)
    expect(rows).toHaveLength(0)
  })

  it('savepoints of a controlled transaction run on its primary connection', async () => {
    const trx = await db.startTransaction().execute()
    await trx.insertInto('item').values({ value: 'kept' }).execute()
    const sp = await trx.savepoint('sp1').execute()
    await sp.insertInto('item').values({ value: 'undone' }).execute()
    const back = await sp.rollbackToSavepoint('sp1').execute()
    await back.commit().execute()
    const rows = await cluster.primary.query<{ value: string }>(
      `select value from item where value in ('kept', 'undone') order by value`,
    )
    expect(rows.map((r) => r.value)).toEqual(['kept'])
  })

  it('db.connection() → the primary, session state kept across its queries', async () => {
    const [first, second] = await db.connection().execute(async (conn) => {
      await sql`set application_name = 'pinned-proof'`.execute(conn)
      const a = await conn
        .selectFrom('item')
        .select(port.as('server'))
        .where('id', '=', 1)
        .executeTakeFirstOrThrow()
      const b = await sql<{ name: string }>`select current_setting('application_name') as name`.execute(conn)
      return [a.server, b.rows[0]?.name]
    })
    expect(where(first as number)).toBe('primary')
    expect(second).toBe('pinned-proof')
  })

  it('.stream() → the primary (one pinned connection), reported as a connection query', async () => {
    const streaming = replicatedDb(cluster, { outsideContext: 'none', cursor: Cursor })
    const streamEvents: RouteEvent[] = []
    streaming.router.on('route', (event) => streamEvents.push(event))
    try {
      const servers = new Set<string | undefined>()
      let rows = 0
      for await (const row of streaming.selectFrom('item').select(port.as('server')).stream(5)) {
        servers.add(where(row.server))
        rows++
      }
      expect(rows).toBeGreaterThan(5) // more than one chunk
      expect(servers).toEqual(new Set(['primary']))
      expect(streamEvents.map((e) => `${e.node}:${e.reason}:${e.ok}`)).toEqual(['primary:connection:true'])
    } finally {
      await streaming.destroy()
    }
  })

  it('raw sql → the primary unless marked read-only with db.replica()', async () => {
    const raw = await sql<{ server: number }>`select inet_server_port() as server`.execute(db)
    expect(where(raw.rows[0]?.server)).toBe('primary')
    expect(lastEvent()).toMatchObject({ reason: 'raw-sql', queryKind: 'RawNode' })
    const readOnly = await sql<{ server: number }>`select inet_server_port() as server`.execute(db.replica())
    expect(where(readOnly.rows[0]?.server)).toMatch(/^replica-/)
  })

  it('explicit overrides: primary() for a select, replica() never sends a builder write to a replica', async () => {
    const row = await db
      .primary()
      .selectFrom('item')
      .select(port.as('server'))
      .where('id', '=', 1)
      .executeTakeFirstOrThrow()
    expect(where(row.server)).toBe('primary')
    expect(lastEvent()).toMatchObject({ reason: 'forced-primary' })
    const written = await db
      .replica()
      .insertInto('item')
      .values({ value: 'r' })
      .returning('port')
      .executeTakeFirstOrThrow()
    expect(where(written.port)).toBe('primary')
  })

  it('usePrimary(): every query of the block, however deep, runs on the primary', async () => {
    const readPort = async () =>
      (await db.selectFrom('item').select(port.as('server')).where('id', '=', 1).executeTakeFirstOrThrow())
        .server
    const deep = async () => [await readPort(), await Promise.resolve().then(readPort)]
    const inside = await db.router.usePrimary(deep)
    expect(inside.map(where)).toEqual(['primary', 'primary'])
    expect(where(await readPort())).toMatch(/^replica-/)
  })

  it('preventWrites() and db.replica({ preventWrites: true }) refuse anything not provably read-only', async () => {
    const before = await cluster.primary.query<{ n: string }>('select count(*) as n from item')
    await db.router.preventWrites(async () => {
      const row = await db
        .selectFrom('item')
        .select(port.as('server'))
        .where('id', '=', 1)
        .executeTakeFirstOrThrow()
      expect(where(row.server)).toMatch(/^replica-/)
      await expect(db.insertInto('item').values({ value: 'refused' }).execute()).rejects.toBeInstanceOf(
        WritesPreventedError,
      )
      await expect(db.selectNoFrom(sql<number>`nextval('item_seq')`.as('n')).execute()).rejects.toMatchObject(
        { code: 'E_REPLICA_WRITES_PREVENTED', context: { reason: 'volatile-function' } },
      )
      await expect(
        db.transaction().execute((trx) => trx.insertInto('item').values({ value: 'refused-trx' }).execute()),
      ).rejects.toBeInstanceOf(WritesPreventedError)
    })
    const strict = db.replica({ preventWrites: true })
    await expect(strict.insertInto('item').values({ value: 'refused-2' }).execute()).rejects.toBeInstanceOf(
      WritesPreventedError,
    )
    await expect(sql`select set_config('work_mem', '1MB', false)`.execute(strict)).rejects.toBeInstanceOf(
      WritesPreventedError,
    )
    const { rows } = await sql<{ server: number }>`select inet_server_port() as server`.execute(strict)
    expect(where(rows[0]?.server)).toMatch(/^replica-/)
    const after = await cluster.primary.query<{ n: string }>('select count(*) as n from item')
    expect(after).toEqual(before)
  })

  it('routing survives withPlugin / withSchema / withoutPlugins', async () => {
    const camel = db.withPlugin(new CamelCasePlugin())
    const a = await camel
      .selectFrom('item')
      .select(port.as('server'))
      .where('id', '=', 1)
      .executeTakeFirstOrThrow()
    expect(where(a.server)).toMatch(/^replica-/)
    const b = await db
      .withSchema('public')
      .insertInto('item')
      .values({ value: 's' })
      .returning('port')
      .executeTakeFirstOrThrow()
    expect(where(b.port)).toBe('primary')
    const c = await db
      .primary()
      .withoutPlugins()
      .selectFrom('item')
      .select(port.as('server'))
      .executeTakeFirstOrThrow()
    expect(where(c.server)).toBe('primary')
  })

  it('a SQL error on a replica is the caller’s error: not retried, replica stays healthy', async () => {
    await expect(sql`select * from no_such_table`.execute(db.replica())).rejects.toMatchObject({
      code: '42P01',
    })
    expect(db.router.metrics().replicas.every((r) => r.status === 'healthy')).toBe(true)
  })

  it('balancing strategies spread reads as designed', async () => {
    const count = async (instance: ReplicatedKysely<Database>, n: number) => {
      const tally = new Map<string, number>()
      await Promise.all(
        Array.from({ length: n }, async () => {
          const row = await instance
            .selectFrom('item')
            .select(port.as('server'))
            .where('id', '=', 1)
            .executeTakeFirstOrThrow()
          const name = where(row.server) ?? '?'
          tally.set(name, (tally.get(name) ?? 0) + 1)
        }),
      )
      return tally
    }
    const make = (balance: 'random' | 'weighted' | 'least-outstanding' | 'p2c', weights = [1, 1]) =>
      createReplicatedKysely<Database>({
        primary: pool(cluster.primary),
        replicas: cluster.replicas.map((r, i) => ({ pool: pool(r), name: r.name, weight: weights[i] ?? 1 })),
        balance,
        outsideContext: 'none',
      })
    for (const balance of ['random', 'least-outstanding', 'p2c'] as const) {
      const instance = make(balance)
      const tally = await count(instance, 60)
      await instance.destroy()
      expect([...tally.keys()].sort(), balance).toEqual(['replica-1', 'replica-2'])
    }
    const weighted = make('weighted', [1, 0])
    const tally = await count(weighted, 30)
    await weighted.destroy()
    expect(tally).toEqual(new Map([['replica-1', 30]]))
  })

  it("Kysely's Migrator runs through the router (lock, DDL and bookkeeping on the primary)", async () => {
    const migrator = new Migrator({
      db,
      provider: {
        getMigrations: async () => ({
          '0001_tag': {
            up: async (trx: Kysely<unknown>) => {
              await trx.schema.createTable('tag').addColumn('name', 'text').execute()
            },
          },
        }),
      },
    })
    // In a context (as with the default outsideContext: 'process'): the Migrator's reads after its
    // own DDL wait for a replica that has the new tables, or go to the primary.
    const { error, results } = await db.router.run(undefined, () => migrator.migrateToLatest())
    expect(error).toBeUndefined()
    expect(results?.map((r) => r.status)).toEqual(['Success'])
    expect(
      await cluster.primary.query(`select 1 from kysely_migration where name = '0001_tag'`),
    ).toHaveLength(1)
  })

  it('metrics count queries per node and reason', () => {
    const metrics = db.router.metrics()
    expect(metrics.byNode.primary?.queries).toBeGreaterThan(0)
    expect(
      (metrics.byNode['replica-1']?.queries ?? 0) + (metrics.byNode['replica-2']?.queries ?? 0),
    ).toBeGreaterThan(0)
    for (const reason of [
      'read',
      'write',
      'ddl',
      'write-cte',
      'locking',
      'transaction',
      'connection',
      'raw-sql',
      'forced-primary',
    ] as const) {
      expect(metrics.byReason[reason], reason).toBeGreaterThan(0)
    }
    expect(metrics.replicas.map((r) => r.status)).toEqual(['healthy', 'healthy'])
  })

  it('the metrics hook hears every routing decision; a throwing hook never breaks a query', async () => {
    const increments: { name: string; labels: Record<string, string> | undefined }[] = []
    const observed: string[] = []
    const warnings: string[] = []
    const counted = replicatedDb(cluster, {
      outsideContext: 'none',
      metrics: {
        increment: (name, labels) => increments.push({ name, labels }),
        observe: (name) => observed.push(name),
      },
    })
    await counted.router.ready()
    await counted.selectFrom('item').select('id').where('id', '=', 1).execute()
    await counted.insertInto('item').values({ value: 'metrics' }).execute()
    await counted.close()
    const queries = increments.filter((entry) => entry.name === 'replica_queries_total')
    expect(queries.map((entry) => entry.labels)).toEqual([
      { node: expect.stringMatching(/^replica-/), role: 'replica', reason: 'read', result: 'ok' },
      { node: 'primary', role: 'primary', reason: 'write', result: 'ok' },
    ])
    expect(observed).toEqual(['replica_query_duration_ms', 'replica_query_duration_ms'])

    const throwing = replicatedDb(cluster, {
      outsideContext: 'none',
      logger: { info() {}, warn: (_object, message) => warnings.push(message), error() {} },
      metrics: {
        increment() {
          throw new Error('hook bug')
        },
        observe() {
          throw new Error('hook bug')
        },
      },
    })
    const rows = await throwing.selectFrom('item').select('id').where('id', '=', 1).execute()
    await throwing.insertInto('item').values({ value: 'metrics' }).execute()
    await throwing.close()
    expect(rows).toHaveLength(1)
    expect(warnings.filter((message) => message.includes('metrics hook threw'))).toHaveLength(1)
  })

  it('promClientMetrics feeds a prom-client registry', async () => {
    const registry = new promClient.Registry()
    const exported = replicatedDb(cluster, {
      outsideContext: 'none',
      metrics: promClientMetrics({ promClient, registers: [registry] }),
    })
    await exported.router.ready()
    await exported.selectFrom('item').select('id').where('id', '=', 1).execute()
    await exported.insertInto('item').values({ value: 'prom' }).execute()
    await exported.insertInto('item').values({ value: 'prom' }).execute()
    await exported.close()
    const text = await registry.metrics()
    expect(text).toMatch(
      /^scale_replica_queries_total\{node="replica-\d",role="replica",reason="read",result="ok"\} 1$/m,
    )
    expect(text).toMatch(
      /^scale_replica_queries_total\{node="primary",role="primary",reason="write",result="ok"\} 2$/m,
    )
    expect(text).toMatch(/^scale_replica_query_duration_ms_count\{role="primary"\} 2$/m)
    expect(text).toMatch(/^scale_replica_read_retries_total 0$/m)
  })

  it('bad options are rejected with a typed error', () => {
    expect(() => createReplicatedKysely({ primary: [] })).toThrow(ReadReplicaOptionsError)
    expect(() => createReplicatedKysely({ primary: pool(cluster.primary), rywWaitMs: -1 })).toThrow(
      expect.objectContaining({ code: 'E_REPLICA_INVALID_OPTIONS' }),
    )
  })
})
