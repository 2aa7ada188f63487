import { readFile, rename, writeFile } from 'node:fs/promises'
import { type Kysely, sql } from 'kysely'
import { ShardMapInvalidError, ShardMapStaleError } from './errors.js'
import { ShardMap } from './shard-map.js'

/** Where the shard map lives. Routers load it at start and reload it when it changes. */
export interface ShardMapStore {
  /** The newest map, or undefined if none was saved yet. */
  load(): Promise<ShardMap | undefined>
  /**
   * Saves `map` as the next epoch. Refused with `ShardMapStaleError` unless the stored epoch is
   * `map.epoch - 1` (or none is stored and `map.epoch` is 1), so two writers cannot both win.
   */
  save(map: ShardMap): Promise<void>
  /** Calls `onChange` when a new map may be there (LISTEN/NOTIFY); resolves to an unsubscribe. */
  watch?(onChange: () => void): Promise<() => Promise<void>>
}

/**
 * A map kept in a JSON file (written to a temp file, then renamed). For one host or a file
 * shared by config management; routers poll it. The epoch check is not atomic across processes:
 * let one process write it.
 */
export function fileMapStore(path: string): ShardMapStore {
  const load = async (): Promise<ShardMap | undefined> => {
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new ShardMapInvalidError(`cannot read ${path}`, error)
    }
    return ShardMap.parse(text)
  }
  return {
    load,
    async save(map) {
      const current = await load()
      if ((current?.epoch ?? 0) !== map.epoch - 1)
        throw new ShardMapStaleError({ bucket: 'any', storedEpoch: current?.epoch ?? 0, epoch: map.epoch })
      const temp = `${path}.${process.pid}.tmp`
      await writeFile(temp, `${JSON.stringify(map.data, null, 1)}\n`)
      await rename(temp, path)
    },
  }
}

/** The subset of a `pg.Client` used for LISTEN: `query`, `on('notification')`, `end`. */
export interface NotificationClient {
  query(text: string): Promise<unknown>
  on(
    event: 'notification',
    listener: (message: { channel: string; payload?: string | undefined }) => void,
  ): unknown
  on(event: 'error', listener: (error: Error) => void): unknown
  end(): Promise<void>
}

/** Options of {@link postgresMapStore}. */
export interface PostgresMapStoreOptions {
  /** The control database (any Postgres of your choice; one of the shards is fine). */
  // biome-ignore lint/suspicious/noExplicitAny: the control tables are not part of the user's schema
  db: Kysely<any>
  /**
   * Opens a dedicated connection for LISTEN, e.g. `async () => { const c = new pg.Client(url); await c.connect(); return c }`.
   * Without it routers only poll.
   * @default undefined
   */
  listen?: () => Promise<NotificationClient>
  /**
   * Table that holds every epoch of the map (created if missing).
   * @default 'scale_shard_map'
   */
  table?: string
}

export const MAP_CHANNEL = 'scale_shard_map'

/** SQLSTATE of a missing table: no map was ever saved in this control database. */
const UNDEFINED_TABLE = '42P01'

/** A map kept in a control table, one row per epoch; a new epoch is announced with NOTIFY. */
export function postgresMapStore(options: PostgresMapStoreOptions): ShardMapStore {
  const table = options.table ?? 'scale_shard_map'
  if (!/^[a-z_][a-z0-9_]*$/.test(table))
    throw new ShardMapInvalidError(`table name ${table} must be a plain identifier`)
  const db = options.db
  let created: Promise<unknown> | undefined
  const ensure = () => {
    created ??= sql
      .raw(
        `create table if not exists ${table} (epoch bigint primary key, map jsonb not null, created_at timestamptz not null default now())`,
      )
      .execute(db)
      .catch((error) => {
        created = undefined
        throw error
      })
    return created
  }
  return {
    // A load is one SELECT, never the shared table creation: a creation stuck on a connection
    // whose network path died would otherwise hold every later load (and start-up) until TCP gives
    // up on it, long after the control database is reachable again over a new connection.
    async load() {
      const result = await sql<{
        map: unknown
      }>`select map from ${sql.table(table)} order by epoch desc limit 1`
        .execute(db)
        .catch((error: unknown) => {
          if ((error as { code?: unknown } | null)?.code === UNDEFINED_TABLE) return undefined // nothing saved yet
          throw error
        })
      const row = result?.rows[0]
      return row ? ShardMap.parse(row.map) : undefined
    },
    async save(map) {
      await ensure()
      // The primary key on epoch and the "nothing newer" check make this a compare-and-set.
      const { rows } = await sql<{ epoch: string }>`
        insert into ${sql.table(table)} (epoch, map)
        select ${map.epoch}, ${JSON.stringify(map.data)}::jsonb
        where coalesce((select max(epoch) from ${sql.table(table)}), 0) = ${map.epoch - 1}
        on conflict (epoch) do nothing
        returning epoch`.execute(db)
      if (rows.length === 0) throw new ShardMapStaleError({ bucket: 'any', epoch: map.epoch })
      await sql`select pg_notify(${MAP_CHANNEL}, ${String(map.epoch)})`.execute(db)
    },
    ...(options.listen
      ? {
          async watch(onChange: () => void) {
            const client = await (options.listen as () => Promise<NotificationClient>)()
            client.on('error', () => onChange())
            client.on('notification', (message) => {
              if (message.channel === MAP_CHANNEL) onChange()
            })
            try {
              await client.query(`listen ${MAP_CHANNEL}`)
            } catch (error) {
              await client.end().catch(() => {}) // a failed subscription keeps no connection open
              throw error
            }
            return async () => {
              await client.end().catch(() => {})
            }
          },
        }
      : {}),
  }
}
