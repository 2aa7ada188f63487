import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type RootOperationNode,
  sql,
} from 'kysely'
import { describe, expect, it } from 'vitest'
import { classifyQuery } from '../src/classify-query.js'
import { ConsistencyTokenCodec } from '../src/consistency-token.js'
import { formatLsn, parseLsn } from '../src/lsn.js'
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
const classify = (query: { compile(): { query: RootOperationNode } }, rawIsRead = false) =>
  classifyQuery(query.compile().query, rawIsRead)

describe('classifyQuery', () => {
  it('plain selects, joins, subqueries and aggregates are reads', () => {
    expect(classify(db.selectFrom('item').selectAll())).toEqual({ write: false, reason: 'read' })
    expect(
      classify(
        db
          .selectFrom('item as a')
          .innerJoin('item as b', 'a.id', 'b.id')
          .where('a.id', 'in', db.selectFrom('item').select('id').where('value', '=', 'x'))
          .select((eb) => eb.fn.count('a.id').as('n')),
      ).write,
    ).toBe(false)
    expect(classify(db.selectFrom('item').select(sql<number>`inet_server_port()`.as('p'))).write).toBe(false)
  })

  it('finds locking clauses and writing functions anywhere in the tree', () => {
    const lockedSubquery = db
      .selectFrom('item')
      .selectAll()
      .where('id', 'in', db.selectFrom('item').select('id').forUpdate().skipLocked())
    expect(classify(lockedSubquery)).toEqual({ write: true, reason: 'locking' })
    expect(classify(db.selectFrom('item').selectAll().forNoKeyUpdate()).reason).toBe('locking')
    expect(classify(db.selectFrom('item').selectAll().forKeyShare()).reason).toBe('locking')
    expect(classify(db.selectNoFrom((eb) => eb.fn<number>('nextval', [sql.lit('s')]).as('n'))).reason).toBe(
      'volatile-function',
    )
    expect(classify(db.selectNoFrom(sql<boolean>`pg_advisory_lock(1)`.as('l'))).reason).toBe(
      'volatile-function',
    )
    expect(
      classify(db.selectFrom('item').select(sql<number>`id`.as('i')).modifyEnd(sql`for update`)).reason,
    ).toBe('locking')
  })

  it('writes, write CTEs, DDL and raw SQL go to the primary; raw is read under db.replica()', () => {
    expect(classify(db.insertInto('item').values({ value: 'x' })).reason).toBe('write')
    expect(classify(db.updateTable('item').set({ value: 'x' })).reason).toBe('write')
    expect(classify(db.deleteFrom('item')).reason).toBe('write')
    expect(
      classify(
        db
          .with('d', (qb) => qb.deleteFrom('item').returning('id'))
          .selectFrom('d')
          .selectAll(),
      ).reason,
    ).toBe('write-cte')
    expect(classify(db.schema.createIndex('i').on('item').column('value')).reason).toBe('ddl')
    expect(classify(db.schema.dropTable('item')).reason).toBe('ddl')
    expect(classify(db.schema.refreshMaterializedView('mv')).reason).toBe('ddl')
    expect(classifyQuery(sql`select 1`.compile(db).query, false)).toEqual({ write: true, reason: 'raw-sql' })
    expect(classifyQuery(sql`select 1`.compile(db).query, true)).toEqual({ write: false, reason: 'read' })
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
