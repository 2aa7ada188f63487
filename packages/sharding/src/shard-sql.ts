import { type Kysely, sql } from 'kysely'
import { ShardMapInvalidError } from './errors.js'
import { FENCED_SQLSTATE } from './fence.js'
import type { ShardMap } from './shard-map.js'

/** A sharded table as the mover and the guard trigger see it. */
export interface ShardedTable {
  /** Table name (optionally `schema.table`). */
  readonly name: string
  /** The column holding the shard key; hashed as `key::text`. */
  readonly shardKey: string
  /** A single-column primary key: the unit of copy, catch-up and checksum chunks. */
  readonly primaryKey: string
}

// Advisory lock namespace of the bucket locks (first int4 of the two-key form).
export const BUCKET_LOCK_SPACE = 0x5343

const identifier = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/

export function checkTable(table: ShardedTable): void {
  for (const part of [table.name, table.shardKey, table.primaryKey]) {
    if (typeof part !== 'string' || !identifier.test(part))
      throw new ShardMapInvalidError(`"${String(part)}" must be a plain lower-case SQL identifier`)
  }
}

/**
 * The key hash in SQL, byte for byte the one in hash.ts (FNV-1a 32 + fmix32). 32-bit products are
 * split in two so they fit a bigint.
 */
const FUNCTIONS = `
create or replace function scale_shard_mul32(a bigint, b bigint) returns bigint
language sql immutable strict parallel safe as $$
  select ((a * (b & 65535)) + (((a * (b >> 16)) & 65535) << 16)) & 4294967295
$$;
create or replace function scale_shard_hash(key text) returns bigint
language plpgsql immutable strict parallel safe as $$
declare
  bytes bytea := convert_to(key, 'UTF8');
  h bigint := 2166136261;
begin
  for i in 0 .. length(bytes) - 1 loop
    h := ((h # get_byte(bytes, i)) * 16777619) & 4294967295;
  end loop;
  h := h # (h >> 16);
  h := scale_shard_mul32(h, 2246822507);
  h := h # (h >> 13);
  h := scale_shard_mul32(h, 3266489909);
  return h # (h >> 16);
end $$;
create table if not exists scale_shard_hot_keys (key text primary key, bucket int not null);
create or replace function scale_shard_bucket(key text, bucket_count int) returns int
language sql stable strict parallel safe as $$
  select coalesce((select h.bucket from scale_shard_hot_keys h where h.key = $1), (scale_shard_hash($1) % $2)::int)
$$;
create table if not exists scale_shard_bucket_state (
  bucket int primary key,
  state text not null check (state in ('moving', 'fenced'))
);
create table if not exists scale_shard_changes (
  id bigserial primary key,
  tbl text not null,
  bucket int not null,
  pk text not null
);
create index if not exists scale_shard_changes_bucket on scale_shard_changes (bucket, id);
create or replace function scale_shard_guard() returns trigger
language plpgsql as $$
declare
  keys text[];
  pks text[];
  b int;
  s text;
begin
  -- The mover's own copy, replay and clean-up (set local scale_shard.mover = 'on').
  if current_setting('scale_shard.mover', true) = 'on' then
    return case when tg_op = 'DELETE' then old else new end;
  end if;
  -- The common case, no bucket moving or handed over on this shard: no hashing at all.
  if not exists (select 1 from scale_shard_bucket_state) then
    return case when tg_op = 'DELETE' then old else new end;
  end if;
  if tg_op = 'INSERT' then
    keys := array[to_jsonb(new) ->> tg_argv[0]]; pks := array[to_jsonb(new) ->> tg_argv[1]];
  elsif tg_op = 'DELETE' then
    keys := array[to_jsonb(old) ->> tg_argv[0]]; pks := array[to_jsonb(old) ->> tg_argv[1]];
  else
    keys := array[to_jsonb(old) ->> tg_argv[0], to_jsonb(new) ->> tg_argv[0]];
    pks := array[to_jsonb(old) ->> tg_argv[1], to_jsonb(new) ->> tg_argv[1]];
  end if;
  for i in 1 .. array_length(keys, 1) loop
    b := scale_shard_bucket(keys[i], tg_argv[2]::int);
    if exists (select 1 from scale_shard_bucket_state where bucket = b) then
      -- Held until commit: the cut-over takes this lock exclusively, so it waits for writes
      -- already under way and every later write sees the fence (read after the lock).
      perform pg_advisory_xact_lock_shared(${BUCKET_LOCK_SPACE}, b);
      select state into s from scale_shard_bucket_state where bucket = b;
      if s = 'fenced' then
        raise exception 'bucket % is not owned by this shard (moved or moving); route again', b
          using errcode = '${FENCED_SQLSTATE}';
      elsif s = 'moving' then
        insert into scale_shard_changes (tbl, bucket, pk) values (tg_table_name, b, pks[i]);
      end if;
    end if;
  end loop;
  return case when tg_op = 'DELETE' then old else new end;
end $$;
`

// biome-ignore lint/suspicious/noExplicitAny: the shard's own schema is not needed here
type AnyKysely = Kysely<any>

/** Installs the hash, the bucket-state tables and the guard trigger of every table on one shard. */
export async function installShard(
  db: AnyKysely,
  map: ShardMap,
  tables: readonly ShardedTable[],
): Promise<void> {
  for (const table of tables) checkTable(table)
  await db.transaction().execute(async (trx) => {
    // One installer at a time per shard (CREATE OR REPLACE FUNCTION races otherwise).
    await sql`select pg_advisory_xact_lock(${BUCKET_LOCK_SPACE}, -1)`.execute(trx)
    await sql.raw(FUNCTIONS).execute(trx)
    for (const table of tables) {
      const trigger = `scale_shard_guard_${table.name.replace('.', '_')}`
      await sql.raw(`drop trigger if exists ${trigger} on ${table.name}`).execute(trx)
      await sql
        .raw(
          `create trigger ${trigger} before insert or update or delete on ${table.name} for each row execute function scale_shard_guard('${table.shardKey}', '${table.primaryKey}', '${map.data.bucketCount}')`,
        )
        .execute(trx)
    }
    await sql`delete from scale_shard_hot_keys`.execute(trx)
    for (const hot of map.data.hotKeys) {
      await sql`insert into scale_shard_hot_keys (key, bucket) values (${hot.key}, ${hot.bucket})`.execute(
        trx,
      )
    }
  })
}

/** The SQL expression of a row's bucket, for `where` clauses of the mover. */
export function bucketExpression(table: ShardedTable, map: ShardMap, alias = 't') {
  return sql`scale_shard_bucket(${sql.ref(`${alias}.${table.shardKey}`)}::text, ${map.data.bucketCount})`
}
