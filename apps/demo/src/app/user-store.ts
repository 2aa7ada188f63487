import type { ReplicatedKysely } from '@scale/read-replica'
import type { ReadThroughCache } from '@scale/read-through-cache'
import { type Selectable, sql } from 'kysely'
import type { Logger } from 'pino'
import type { Database, UserJson, UsersTable } from './schema.js'
import type { ProfilePatch } from './validation.js'

/** A user and the version of its row (bumped by every update; the load side checks it). */
export interface VersionedUser {
  user: UserJson
  version: number
}

const USER_TTL_MS = 60_000

const COLUMNS = [
  'id',
  'first_name',
  'last_name',
  'street_address',
  'city',
  'state',
  'postal_code',
  'phone_numbers',
  'version',
] as const

type UserRow = Pick<Selectable<UsersTable>, (typeof COLUMNS)[number]>

function toJson(row: UserRow): VersionedUser {
  return {
    version: row.version,
    user: {
      id: row.id,
      firstName: row.first_name,
      lastName: row.last_name,
      address: {
        streetAddress: row.street_address,
        city: row.city,
        state: row.state,
        postalCode: row.postal_code,
      },
      phoneNumbers: row.phone_numbers,
    },
  }
}

/** Reads and writes profiles: the database through the router, and the cache when it is on. */
export class UserStore {
  readonly #db: ReplicatedKysely<Database>
  readonly #cache: ReadThroughCache | undefined
  readonly #log: Logger
  /** Database loads of a user (cache misses when the cache is on). */
  loads = 0

  constructor(db: ReplicatedKysely<Database>, cache: ReadThroughCache | undefined, log: Logger) {
    this.#db = db
    this.#cache = cache
    this.#log = log
  }

  async get(id: number): Promise<VersionedUser | undefined> {
    if (!this.#cache) return this.#load(id)
    const key = `user:${id}`
    if (this.#db.router.token() !== undefined) return this.#readOwnWrite(key, id)
    // The block stage 5 switches on: one database load per key across every web server.
    return this.#cache.getOrLoad(key, () => this.#load(id), { ttlMs: USER_TTL_MS })
  }

  /**
   * A client that sent a consistency token must see its own write. `getOrLoad` would let it join a
   * load of this key already running in this process, started before the write by a reader without
   * a token (so possibly from a replica that had not replayed the write): with `local: false` no
   * invalidation reaches this process, and the joined load answers the old row even though the
   * write's `set` resolved before this request began. Such a read takes only what Redis holds (the
   * write-through value, or a load that no later write voided) and otherwise loads under its own
   * token, without storing: the next plain reader fills the cache.
   */
  async #readOwnWrite(key: string, id: number): Promise<VersionedUser | undefined> {
    const cached = await this.#cache?.get<VersionedUser>(key).catch(() => undefined)
    return cached ?? this.#load(id)
  }

  async #load(id: number): Promise<VersionedUser | undefined> {
    this.loads++
    const row = await this.#db.selectFrom('users').select(COLUMNS).where('id', '=', id).executeTakeFirst()
    return row ? toJson(row) : undefined
  }

  async update(id: number, patch: ProfilePatch): Promise<VersionedUser | undefined> {
    const row = await this.#db
      .updateTable('users')
      .set({
        ...(patch.firstName !== undefined && { first_name: patch.firstName }),
        ...(patch.lastName !== undefined && { last_name: patch.lastName }),
        ...(patch.address && {
          street_address: patch.address.streetAddress,
          city: patch.address.city,
          state: patch.address.state,
          postal_code: patch.address.postalCode,
        }),
        ...(patch.phoneNumbers && { phone_numbers: JSON.stringify(patch.phoneNumbers) }),
        version: sql<number>`version + 1`,
        updated_at: sql<Date>`now()`,
      })
      .where('id', '=', id)
      .returning(COLUMNS)
      .executeTakeFirst()
    if (!row) return undefined
    const updated = toJson(row)
    await this.#writeThrough(id, updated)
    return updated
  }

  async #writeThrough(id: number, value: VersionedUser): Promise<void> {
    if (!this.#cache) return
    try {
      // After the commit, the new row goes into the cache (rather than a delete): a load that read
      // the old row from a replica before this write cannot store it any more (set voids its
      // lease), and the next read needs no replica that has caught up.
      await this.#cache.set(`user:${id}`, value, { ttlMs: USER_TTL_MS })
    } catch (error) {
      // Redis down: the cache queued the invalidation and replays it when Redis is back.
      this.#log.warn({ err: error, userId: id }, 'cache write queued as an invalidation')
    }
  }

  async findLogin(username: string): Promise<{ id: number; passwordHash: string } | undefined> {
    const row = await this.#db
      .selectFrom('users')
      .select(['id', 'password_hash'])
      .where('username', '=', username)
      .executeTakeFirst()
    return row ? { id: row.id, passwordHash: row.password_hash } : undefined
  }
}
