import { usePostgresClusters } from '@scale/testkit/vitest'
import fc from 'fast-check'
import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createShardedKysely,
  createShardMap,
  type ShardedKysely,
  ShardUnreachableError,
  UnmergeableQueryError,
} from '../src/index.js'
import { kysely } from './helpers.js'

interface Db {
  events: { id: number; user_id: number; kind: string; amount: number; score: number | null }
}

const SCHEMA = `create table events (id int primary key, user_id int not null, kind text not null, amount int not null, score int)`
const NAMES = ['s1', 's2', 's3', 's4']
const map = createShardMap({ shards: NAMES })

type Event = Db['events']
const eventArb = fc.record({
  user_id: fc.integer({ min: 1, max: 40 }),
  kind: fc.constantFrom('a', 'b', 'B', 'é', 'aa', '10', '9', 'zz'),
  amount: fc.integer({ min: -50, max: 50 }),
  score: fc.option(fc.integer({ min: 0, max: 9 }), { nil: null }),
})
const dataArb = fc
  .array(eventArb, { maxLength: 60 })
  .map((rows) => rows.map((row, index) => ({ ...row, id: index + 1 })))

const COLUMNS = ['id', 'user_id', 'kind', 'amount', 'score'] as const
const ORDERABLE = ['kind', 'amount', 'score', 'user_id'] as const
const pageArb = fc.record({
  limit: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined }),
  offset: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined }),
})

const rowsQueryArb = fc.record({
  columns: fc.subarray([...COLUMNS], { minLength: 1 }),
  above: fc.option(fc.integer({ min: -50, max: 50 }), { nil: undefined }),
  order: fc.array(
    fc.record({
      column: fc.constantFrom(...ORDERABLE),
      desc: fc.boolean(),
      nulls: fc.constantFrom(undefined, 'first' as const, 'last' as const),
    }),
    { maxLength: 3 },
  ),
  page: pageArb,
})

const AGGREGATES = ['n', 'ns', 's', 'mn', 'mx', 'av', 'mk'] as const
const groupsQueryArb = fc.record({
  groupBy: fc.subarray(['kind', 'user_id', 'score'] as const),
  aggregates: fc.subarray([...AGGREGATES], { minLength: 1 }),
  having: fc.option(
    fc.record({
      aggregate: fc.constantFrom('count', 'sum', 'max'),
      operator: fc.constantFrom('>', '>=', '<', '='),
      value: fc.integer({ min: -20, max: 20 }),
    }),
    { nil: undefined },
  ),
  orderByAggregate: fc.option(fc.record({ name: fc.constantFrom(...AGGREGATES), desc: fc.boolean() }), {
    nil: undefined,
  }),
  desc: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
  page: pageArb,
})

type RowsQuery = typeof rowsQueryArb extends fc.Arbitrary<infer T> ? T : never
type GroupsQuery = typeof groupsQueryArb extends fc.Arbitrary<infer T> ? T : never

function buildRows(db: Kysely<Db>, q: RowsQuery) {
  let query = db.selectFrom('events').select(q.columns)
  if (q.above !== undefined) query = query.where('amount', '>', q.above)
  for (const item of q.order) {
    query = query.orderBy(item.column, (ob) => {
      const directed = item.desc ? ob.desc() : ob.asc()
      return item.nulls === 'first'
        ? directed.nullsFirst()
        : item.nulls === 'last'
          ? directed.nullsLast()
          : directed
    })
  }
  query = query.orderBy('id') // a total order: with ties, any order of the tied rows would be right
  if (q.page.limit !== undefined) query = query.limit(q.page.limit)
  if (q.page.offset !== undefined) query = query.offset(q.page.offset)
  return query
}

function buildGroups(db: Kysely<Db>, q: GroupsQuery) {
  let query = db
    .selectFrom('events')
    .select(q.groupBy)
    .select((eb) =>
      q.aggregates.map((name) => {
        switch (name) {
          case 'n':
            return eb.fn.countAll().as('n')
          case 'ns':
            return eb.fn.count('score').as('ns')
          case 's':
            return eb.fn.sum('amount').as('s')
          case 'mn':
            return eb.fn.min('score').as('mn')
          case 'mx':
            return eb.fn.max('kind').as('mx')
          case 'av':
            return eb.fn.avg('amount').as('av')
          default:
            return eb.fn.min('kind').as('mk')
        }
      }),
    )
  if (q.groupBy.length > 0) query = query.groupBy(q.groupBy)
  if (q.having) {
    const { aggregate, operator, value } = q.having
    query = query.having(
      (eb) =>
        aggregate === 'count'
          ? eb.fn.countAll()
          : aggregate === 'sum'
            ? eb.fn.sum('amount')
            : eb.fn.max('score'),
      operator,
      value,
    )
  }
  if (q.orderByAggregate && q.aggregates.includes(q.orderByAggregate.name))
    query = query.orderBy(sql.ref(q.orderByAggregate.name), q.orderByAggregate.desc ? 'desc' : 'asc')
  q.groupBy.forEach((column, index) => {
    query = query.orderBy(column, q.desc[index] ? 'desc' : 'asc')
  })
  if (q.page.limit !== undefined) query = query.limit(q.page.limit)
  if (q.page.offset !== undefined) query = query.offset(q.page.offset)
  return query
}

describe('scatter-gather merges like one database', () => {
  const clusters = usePostgresClusters(5)
  let oracle: Kysely<Db>
  let direct: Kysely<Db>[] = []
  let db: ShardedKysely<Db>

  beforeAll(async () => {
    for (const cluster of clusters) await cluster.primary.query(SCHEMA)
    oracle = kysely<Db>(clusters[4]!.primary)
    direct = clusters.slice(0, 4).map((cluster) => kysely<Db>(cluster.primary))
    db = await createShardedKysely<Db>({
      shards: Object.fromEntries(NAMES.map((name, index) => [name, kysely<Db>(clusters[index]!.primary)])),
      map,
    })
  })

  afterAll(async () => {
    await db?.close()
    await Promise.all([oracle, ...direct].map((d) => d?.destroy()))
  })

  async function load(rows: Event[]): Promise<void> {
    await Promise.all([oracle, ...direct].map((d) => sql`truncate events`.execute(d)))
    if (rows.length === 0) return
    await oracle.insertInto('events').values(rows).execute()
    for (const [index, name] of NAMES.entries()) {
      const mine = rows.filter((row) => map.shardOf(row.user_id) === name)
      if (mine.length > 0) await direct[index]!.insertInto('events').values(mine).execute()
    }
  }

  it('ORDER BY (also by columns not selected) with LIMIT/OFFSET: same rows as the oracle', async () => {
    await fc.assert(
      fc.asyncProperty(dataArb, rowsQueryArb, async (rows, q) => {
        await load(rows)
        const expected = await buildRows(oracle, q).execute()
        const merged = await db.allShards().select((shard) => buildRows(shard, q))
        expect(merged.complete).toBe(true)
        expect(merged.rows).toEqual(expected)
      }),
      { numRuns: 60 },
    )
  })

  it('COUNT/SUM/MIN/MAX/AVG with GROUP BY, HAVING, ORDER BY and LIMIT: same rows as the oracle', async () => {
    await fc.assert(
      fc.asyncProperty(dataArb, groupsQueryArb, async (rows, q) => {
        await load(rows)
        const expected = await buildGroups(oracle, q).execute()
        const merged = await db.allShards().select((shard) => buildGroups(shard, q))
        // Without GROUP BY the order of one row is trivially total; with it, ORDER BY lists every
        // group column, so the order is total too.
        expect(merged.rows).toEqual(expected)
      }),
      { numRuns: 60 },
    )
  })

  it('refuses what it cannot merge exactly, before anything runs', async () => {
    const refused = [
      () => db.allShards().select((d) => d.selectFrom('events').select('kind').distinct()),
      () =>
        db
          .allShards()
          .select((d) => d.selectFrom('events').select((eb) => eb.fn.count('kind').distinct().as('n'))),
      () =>
        db.allShards().select((d) => d.selectFrom('events').select((eb) => eb.fn.countAll().over().as('n'))),
      () =>
        db
          .allShards()
          .select((d) => d.selectFrom('events').select(sql<number>`sum(amount) * 2`.as('double'))),
      () =>
        db
          .allShards()
          .select((d) => d.selectFrom('events').select('kind').union(d.selectFrom('events').select('kind'))),
      () => db.allShards().select((d) => d.selectFrom('events').select(['kind', 'amount']).groupBy('kind')),
      () => db.allShards().select((d) => d.selectFrom('events').selectAll().forUpdate()),
    ]
    for (const query of refused) await expect(query()).rejects.toThrow(UnmergeableQueryError)
  })

  it('flags or refuses a partial answer when a shard misses its deadline', async () => {
    await load([{ id: 1, user_id: 1, kind: 'a', amount: 1, score: null }])
    const late = NAMES.find((_, index) => index === 2) as string
    clusters[2]!.primary.pause()
    try {
      await expect(
        db.allShards().select((d) => d.selectFrom('events').select('id'), { deadlineMs: 2_000 }),
      ).rejects.toThrow(ShardUnreachableError)
      const partial = await db
        .allShards()
        .select((d) => d.selectFrom('events').select('id'), { deadlineMs: 2_000, allowPartial: true })
      expect(partial.complete).toBe(false)
      expect(partial.missingShards).toEqual([late])
    } finally {
      clusters[2]!.primary.resume()
    }
  })
})
