import { type Kysely, sql } from 'kysely'

/** The sharded tables, co-located by user: a user's account row and posts live on one shard. */
export interface ShardDatabase {
  account: { id: number; name: string; posts: number }
  post: { id: number; user_id: number; body: string }
}

/** What the mover and the routers need to know of each table. */
export const SHARDED_TABLES = [
  { name: 'account', shardKey: 'id', primaryKey: 'id' },
  { name: 'post', shardKey: 'user_id', primaryKey: 'id' },
] as const

/** Stage 11's web server config (DEMO_APP_CONFIG). */
export interface ShardedAppConfig {
  name: string
  /** The control database: shard map epochs (NOTIFY on each), global state of moves. */
  control: string
  shards: Record<string, { primary: string; replica?: string }>
  maxMapAgeMs: number
}

// biome-ignore lint/suspicious/noExplicitAny: created before the typed schema exists
export async function createShardTables(db: Kysely<any>): Promise<void> {
  await sql`create table if not exists account (id bigint primary key, name text not null, posts int not null default 0)`.execute(
    db,
  )
  await sql`create table if not exists post (id bigint primary key, user_id bigint not null, body text not null)`.execute(
    db,
  )
}
