import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
} from 'kysely'
import { describe, expect, it } from 'vitest'
import { ConsistencyTokenCodec } from '../src/consistency-token.js'
import { formatLsn, parseLsn } from '../src/lsn.js'
import { scanSql } from '../src/sql-scan.js'
import type { Database } from './helpers.js'

// Compile-only Kysely: these tests look at the operation-node tree, no server involved.
const db = new Kysely<Database>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (k) => new PostgresIntrospector(k),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
})
const scan = (query: { compile(): { sql: string } }) => scanSql(query.compile().sql)
const names = (query: { compile(): { sql: string } }) => scan(query).functions.map((n) => n.join('.'))

describe('scanSql: what a compiled query calls and whether it writes', () => {
  it('plain selects, joins, subqueries and casts call nothing and write nothing', () => {
    expect(scan(db.selectFrom('item').selectAll().where('id', '=', 1))).toEqual({
      functions: [],
      writes: undefined,
      unreadable: false,
    })
    const joined = db
      .selectFrom('item as a')
      .innerJoin('item as b', 'a.id', 'b.id')
      .where('a.id', 'in', db.selectFrom('item').select('id').where('value', '=', 'x'))
      .where((eb) => eb.exists(eb.selectFrom('item').select('id')))
      .select(sql<string>`cast(a.value as varchar(10))`.as('v'))
      .select(sql<string>`a.value::numeric(10, 2)`.as('n'))
    expect(scan(joined)).toMatchObject({ functions: [], writes: undefined })
    const cteColumns = db
      .with('c(n)', (qb) => qb.selectFrom('item').select('id as n'))
      .selectFrom('c')
      .selectAll()
    expect(scan(cteColumns)).toMatchObject({ functions: [], writes: undefined })
  })

  it('finds every function call: builder, raw, sql.raw, quoted, schema-qualified, aggregates', () => {
    expect(names(db.selectFrom('item').select((eb) => eb.fn.count('id').as('n')))).toEqual(['count'])
    expect(names(db.selectNoFrom((eb) => eb.fn<number>('NextVal', [sql.lit('s')]).as('n')))).toEqual([
      'nextval',
    ])
    expect(names(db.selectNoFrom(sql<number>`"nextval"('s')`.as('n')))).toEqual(['nextval'])
    expect(names(db.selectNoFrom(sql<number>`${sql.raw('nextval')}('s')`.as('n')))).toEqual(['nextval'])
    expect(names(db.selectNoFrom(sql<number>`pg_catalog . setval('s', 1)`.as('n')))).toEqual([
      'pg_catalog.setval',
    ])
    expect(names(db.selectNoFrom(sql<number>`"App"."Fn"(1)`.as('n')))).toEqual(['App.Fn'])
    expect(names(db.selectFrom(sql<{ g: number }>`generate_series(1, 3)`.as('g')).selectAll())).toEqual([
      'generate_series',
    ])
  })

  it('ignores keywords and names inside strings, quoted identifiers and comments', () => {
    const hidden = sql<string>`'nextval(1); update x' || $q$ delete $q$ /* insert /* nested */ set */ -- drop
      || E'it\\'s set('`
    expect(scan(db.selectNoFrom(hidden.as('s')))).toEqual({
      functions: [],
      writes: undefined,
      unreadable: false,
    })
    expect(scan(db.selectFrom('item').select('item.value as update'))).toMatchObject({ writes: undefined })
    expect(scan(db.selectNoFrom(sql<string>`'unterminated`.as('s'))).unreadable).toBe(true)
  })

  it('finds data-modifying keywords, locking clauses, session statements and a second statement', () => {
    const cte = db
      .with('x', () => sql`(update item set value = 'v' returning id)`)
      .selectFrom('x')
      .selectAll()
    expect(scan(cte).writes).toBe('dml')
    expect(
      scan(
        db
          .with('d', (qb) => qb.deleteFrom('item').returning('id'))
          .selectFrom('d')
          .selectAll(),
      ).writes,
    ).toBe('dml')
    const lockedSubquery = db
      .selectFrom('item')
      .selectAll()
      .where('id', 'in', db.selectFrom('item').select('id').forUpdate().skipLocked())
    expect(scan(lockedSubquery).writes).toBe('locking')
    expect(scan(db.selectFrom('item').selectAll().forKeyShare()).writes).toBe('locking')
    expect(
      scan(db.selectFrom('item').select(sql<number>`id`.as('i')).modifyEnd(sql`for update`)).writes,
    ).toBe('locking')
    expect(scan(db.selectNoFrom(sql<number>`1; set statement_timeout = 0`.as('x'))).writes).toBe('other')
    expect(scan(db.selectFrom('item').selectAll().modifyEnd(sql`into new_table`)).writes).toBe('other')
    expect(
      scan(db.selectFrom('item').select(sql<string>`substring(value from 1 for 2)`.as('s'))).writes,
    ).toBe(undefined)
  })

  it('statements that only begin a statement count as its first word: the same words as column names stay reads', () => {
    for (const statement of [
      'start transaction isolation level repeatable read',
      "comment on table item is 'x'",
      'end',
      'fetch next from c',
      'move forward 5 in c',
      'close c',
      '/* a comment first */ START TRANSACTION',
      '-- a comment ended by a carriage return\rset search_path to public',
      'lock table item',
      'set statement_timeout = 0',
      'copy item to stdout',
      'truncate item',
      'listen ch',
      'reassign owned by a to b',
    ])
      expect(scanSql(statement).writes, statement).toBe('other')
    // Words that can follow others in one statement count anywhere: explain analyze/execute, select into.
    expect(scanSql('explain analyse select 1').writes).toBe('other')
    expect(scanSql('select 1 into t').writes).toBe('other')
    expect(scanSql(`select $${'t'.repeat(70)}$'$${'t'.repeat(70)}$; select 1`).writes).toBe('other')
    for (const read of [
      'select comment, start from item',
      'select load, release, lock, set, copy, notify from item',
      'select case when id > 1 then 1 else 0 end from item',
      'select * from item order by id fetch first 1 rows only',
    ])
      expect(scanSql(read).writes, read).toBe(undefined)
  })
})

describe('WAL positions and consistency tokens', () => {
  it('parses and orders LSNs across the 32-bit boundary', () => {
    const low = parseLsn('0/FFFFFFFF') as bigint
    const high = parseLsn('1/0') as bigint
    expect(high > low).toBe(true)
    expect(high - low).toBe(1n)
    expect(formatLsn(parseLsn('16/B374D848') as bigint)).toBe('16/B374D848')
    for (const bad of [null, undefined, '', '1', '1/', 'G/0', '123456789/0', 42])
      expect(parseLsn(bad)).toBeUndefined()
  })

  it('round-trips tokens, rejects edits, wrong secrets and garbage', () => {
    const plain = new ConsistencyTokenCodec(undefined)
    const signed = new ConsistencyTokenCodec('k1')
    const lsn = parseLsn('3/1A2B3C4D') as bigint
    expect(plain.decode(plain.encode(lsn))).toBe(lsn)
    const token = signed.encode(lsn)
    expect(token).toMatch(/^[A-Za-z0-9._-]+$/)
    expect(encodeURIComponent(token)).toBe(token)
    expect(signed.decode(token)).toBe(lsn)
    expect(() => new ConsistencyTokenCodec('k2').decode(token)).toThrow(/signature mismatch/)
    expect(() => signed.decode(plain.encode(lsn))).toThrow(/signature missing/)
    const edited = token.replace(/^1\.(.)/, (_, c: string) => `1.${c === '0' ? '1' : '0'}`)
    expect(() => signed.decode(edited)).toThrow(/signature mismatch/)
    for (const bad of [
      '',
      '2.0000000000000001',
      '1.000000000000000g',
      `1.${'0'.repeat(17)}`,
      'a'.repeat(5000),
    ]) {
      expect(() => plain.decode(bad)).toThrow(expect.objectContaining({ code: 'E_REPLICA_TOKEN_MALFORMED' }))
    }
  })
})
