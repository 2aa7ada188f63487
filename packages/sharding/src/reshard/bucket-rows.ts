import { type Kysely, type RawBuilder, sql } from 'kysely'
import { ShardMoveError } from '../errors.js'
import type { ShardMap } from '../shard-map.js'
import { bucketExpression, type ShardedTable } from '../shard-sql.js'

// Row-level work of a move, one table at a time: scan the source in primary-key order (chunked,
// so every step is resumable from the last key), copy by upsert, replay captured changes,
// checksum, and delete. Rows travel as jsonb so no column list is needed on the way.

// biome-ignore lint/suspicious/noExplicitAny: shards are addressed by table name, not schema type
type AnyKysely = Kysely<any>

export interface TableShape {
  readonly columns: readonly string[]
  readonly keyType: string
}

export async function tableShape(db: AnyKysely, table: ShardedTable): Promise<TableShape> {
  const { rows } = await sql<{ name: string; type: string }>`
    select a.attname as name, format_type(a.atttypid, a.atttypmod) as type
    from pg_attribute a
    where a.attrelid = ${table.name}::regclass and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
    order by a.attnum`.execute(db)
  const key = rows.find((row) => row.name === table.primaryKey)
  return { columns: rows.map((row) => row.name), keyType: key?.type ?? 'text' }
}

/** Runs `work` in a transaction marked as the mover's, which the guard trigger lets through. */
export function asMover<T>(db: AnyKysely, work: (trx: AnyKysely) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`set local scale_shard.mover = 'on'`.execute(trx)
    return work(trx)
  })
}

const after = (
  table: ShardedTable,
  shape: TableShape,
  last: string | null,
  alias = 't',
): RawBuilder<unknown> =>
  last === null
    ? sql`true`
    : sql`${sql.ref(`${alias}.${table.primaryKey}`)} > cast(${last} as ${sql.raw(shape.keyType)})`

/** The next chunk of the bucket's rows after `last` (in key order), and the last key scanned. */
export async function scanChunk(
  db: AnyKysely,
  table: ShardedTable,
  shape: TableShape,
  map: ShardMap,
  bucket: number,
  last: string | null,
  chunkSize: number,
): Promise<{ rows: unknown[]; last: string | null; done: boolean }> {
  const pk = sql.ref(`t.${table.primaryKey}`)
  const { rows } = await sql<{ last: string | null; rows: unknown[]; scanned: number }>`
    with scan as (select * from ${sql.table(table.name)} t where ${after(table, shape, last)} order by ${pk} limit ${chunkSize})
    select (select max(${sql.ref(table.primaryKey)})::text from scan) as last,
           (select count(*)::int from scan) as scanned,
           coalesce((select jsonb_agg(to_jsonb(t)) from scan t where ${bucketExpression(table, map)} = ${bucket}), '[]'::jsonb) as rows`.execute(
    db,
  )
  const row = rows[0]
  return { rows: row?.rows ?? [], last: row?.last ?? last, done: (row?.scanned ?? 0) < chunkSize }
}

/**
 * Inserts or overwrites rows (jsonb objects) of the moving bucket on the target. A target row
 * with the same primary key that belongs to another bucket (keys not unique across shards, e.g.
 * a per-shard `bigserial`) is never overwritten: the chunk is rolled back and the move refused.
 */
export async function upsertRows(
  db: AnyKysely,
  table: ShardedTable,
  shape: TableShape,
  map: ShardMap,
  bucket: number,
  rows: readonly unknown[],
): Promise<void> {
  if (rows.length === 0) return
  const columns = sql.join(shape.columns.map((column) => sql.ref(column)))
  const updates = sql.join(
    shape.columns
      .filter((column) => column !== table.primaryKey || shape.columns.length === 1)
      .map((column) => sql`${sql.ref(column)} = excluded.${sql.ref(column)}`),
  )
  await asMover(db, async (trx) => {
    const { rows: written } = await sql<{ n: number }>`
      with written as (
        insert into ${sql.table(table.name)} as t (${columns})
        select ${columns} from jsonb_populate_recordset(null::${sql.table(table.name)}, ${JSON.stringify(rows)}::jsonb)
        on conflict (${sql.ref(table.primaryKey)}) do update set ${updates}
        where ${bucketExpression(table, map)} = ${bucket}
        returning 1)
      select count(*)::int as n from written`.execute(trx)
    const count = written[0]?.n ?? 0
    if (count < rows.length)
      throw new ShardMoveError(
        `${rows.length - count} row(s) of bucket ${bucket} have the primary key of another bucket's row on the target; primary keys must be unique across all shards (use global IDs), nothing was overwritten and the bucket stays on its source`,
        { bucket, table: table.name, conflict: 'primary-key' },
      )
  })
}

/**
 * Makes the target's copy of the given keys equal to the source's: rows the source still has in
 * the bucket are upserted, the others deleted. Idempotent, so a replay after a crash is harmless.
 */
export async function syncKeys(
  source: AnyKysely,
  target: AnyKysely,
  table: ShardedTable,
  shape: TableShape,
  map: ShardMap,
  bucket: number,
  keys: readonly string[],
): Promise<void> {
  if (keys.length === 0) return
  const pk = sql.ref(`t.${table.primaryKey}`)
  const keyArray = sql`cast(${keys} as ${sql.raw(shape.keyType)}[])`
  const { rows } = await sql<{ row: Record<string, unknown> }>`
    select to_jsonb(t) as row from ${sql.table(table.name)} t
    where ${pk} = any(${keyArray}) and ${bucketExpression(table, map)} = ${bucket}`.execute(source)
  const present = rows.map((row) => row.row)
  await upsertRows(target, table, shape, map, bucket, present)
  const kept = present.map((row) => String(row[table.primaryKey]))
  const gone = keys.filter((key) => !kept.includes(key))
  if (gone.length > 0)
    await asMover(target, (trx) =>
      sql`delete from ${sql.table(table.name)} t where ${pk} = any(cast(${gone} as ${sql.raw(shape.keyType)}[])) and ${bucketExpression(table, map)} = ${bucket}`.execute(
        trx,
      ),
    )
}

/** The last key of the next `chunkSize` keys after `last` (an index-only scan), for checksum ranges. */
export async function nextBoundary(
  db: AnyKysely,
  table: ShardedTable,
  shape: TableShape,
  last: string | null,
  chunkSize: number,
): Promise<{ last: string | null; done: boolean }> {
  const pk = sql.ref(`t.${table.primaryKey}`)
  const { rows } = await sql<{ last: string | null; scanned: number }>`
    select max(k)::text as last, count(*)::int as scanned
    from (select ${pk} as k from ${sql.table(table.name)} t where ${after(table, shape, last)} order by ${pk} limit ${chunkSize}) s`.execute(
    db,
  )
  const row = rows[0]
  return { last: row?.last ?? last, done: (row?.scanned ?? 0) < chunkSize }
}

/** md5 and count of the bucket's rows in a key range, both sides computed the same way. */
export async function rangeChecksum(
  db: AnyKysely,
  table: ShardedTable,
  shape: TableShape,
  map: ShardMap,
  bucket: number,
  from: string | null,
  to: string,
): Promise<{ md5: string | null; count: number }> {
  const pk = sql.ref(`t.${table.primaryKey}`)
  const { rows } = await sql<{ md5: string | null; count: number }>`
    select md5(string_agg(to_jsonb(t)::text, ',' order by ${pk})) as md5, count(*)::int as count
    from ${sql.table(table.name)} t
    where ${after(table, shape, from)} and ${pk} <= cast(${to} as ${sql.raw(shape.keyType)}) and ${bucketExpression(table, map)} = ${bucket}`.execute(
    db,
  )
  return rows[0] ?? { md5: null, count: 0 }
}

/** Deletes one chunk of the bucket's rows (scanning in key order); returns the last key scanned. */
export async function deleteChunk(
  db: AnyKysely,
  table: ShardedTable,
  shape: TableShape,
  map: ShardMap,
  bucket: number,
  last: string | null,
  chunkSize: number,
): Promise<{ last: string | null; done: boolean }> {
  const pk = sql.ref(`t.${table.primaryKey}`)
  return asMover(db, async (trx) => {
    const { rows } = await sql<{ last: string | null; scanned: number }>`
      with scan as (select ${pk} as k from ${sql.table(table.name)} t where ${after(table, shape, last)} order by ${pk} limit ${chunkSize}),
      gone as (delete from ${sql.table(table.name)} t using scan where ${pk} = scan.k and ${bucketExpression(table, map)} = ${bucket} returning 1)
      select (select max(k)::text from scan) as last, (select count(*)::int from scan) as scanned, (select count(*) from gone) as deleted`.execute(
      trx,
    )
    const row = rows[0]
    return { last: row?.last ?? last, done: (row?.scanned ?? 0) < chunkSize }
  })
}
