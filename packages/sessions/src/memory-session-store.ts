import { META } from './redis-keys.js'
import { tagForUser } from './session-id.js'
import type {
  CreateOutcome,
  NewSessionRecord,
  SessionLocation,
  SessionStore,
  UserSessionInfo,
} from './session-store.js'

interface MemoryRecord {
  fields: Map<string, string>
  expiresAt: number
  userId: string | undefined
  /** The user's revocation epoch when the record was created. */
  epoch: number
}

/**
 * A {@link SessionStore} in this process's memory, for tests and single-process development:
 * the same contract as the Redis store (it passes the same conformance suite), nothing shared
 * between processes, nothing kept across restarts. Expired records are dropped when touched.
 *
 * @example
 * ```ts
 * import { createMemorySessionStore, createSessions } from '@scale/sessions'
 * const sessions = createSessions({ store: createMemorySessionStore(), secrets: [secret] })
 * ```
 */
export function createMemorySessionStore(): SessionStore {
  return new MemorySessionStore()
}

class MemorySessionStore implements SessionStore {
  readonly #records = new Map<string, MemoryRecord>()
  readonly #users = new Map<string, { epoch: number; sessions: Set<string> }>()

  userTag(userId: string): string {
    return tagForUser('memory', userId)
  }

  async read(at: SessionLocation): Promise<Record<string, string>> {
    const record = this.#live(at)
    return record ? Object.fromEntries(record.fields) : {}
  }

  async create(record: NewSessionRecord): Promise<CreateOutcome> {
    const key = keyOf(record.location)
    if (this.#live(record.location)) return 'collision'
    const user = record.userId === undefined ? undefined : this.#user(record.userId)
    if (record.replaces !== undefined) {
      const old = this.#live(record.replaces)
      if (!old || !user || old.epoch !== user.epoch) return 'revoked'
      this.#drop(keyOf(record.replaces))
    }
    const fields = new Map<string, string>()
    for (let i = 0; i + 1 < record.fields.length; i += 2) {
      fields.set(record.fields[i] as string, record.fields[i + 1] as string)
    }
    this.#records.set(key, {
      fields,
      expiresAt: Date.now() + record.ttlMs,
      userId: record.userId,
      epoch: user?.epoch ?? 0,
    })
    user?.sessions.add(key)
    if (user && record.maxSessionsPerUser !== undefined)
      this.#enforceCap(user.sessions, key, record.maxSessionsPerUser)
    return 'created'
  }

  /** Ends the least recently used sessions (by last-seen time) beyond the cap, never `keep`. */
  #enforceCap(sessions: Set<string>, keep: string, cap: number): void {
    const others = [...sessions]
      .filter((key) => key !== keep && this.#records.get(key) !== undefined)
      .sort(
        (a, b) =>
          Number(this.#records.get(a)?.fields.get(META.touchedAt)) -
          Number(this.#records.get(b)?.fields.get(META.touchedAt)),
      )
    for (const key of others.slice(0, Math.max(0, others.length + 1 - cap))) this.#drop(key)
  }

  async update(
    at: SessionLocation,
    _userId: string | undefined,
    ttlMs: number,
    setPairs: readonly string[],
    deleted: readonly string[],
  ): Promise<boolean> {
    const record = this.#live(at)
    if (!record) return false
    if (record.userId !== undefined && record.epoch !== this.#user(record.userId).epoch) {
      this.#drop(keyOf(at))
      return false
    }
    for (let i = 0; i + 1 < setPairs.length; i += 2) {
      record.fields.set(setPairs[i] as string, setPairs[i + 1] as string)
    }
    for (const field of deleted) record.fields.delete(field)
    if (ttlMs > 0) record.expiresAt = Date.now() + ttlMs
    return true
  }

  async destroy(at: SessionLocation): Promise<boolean> {
    const existed = this.#live(at) !== undefined
    this.#drop(keyOf(at))
    return existed
  }

  async listUser(userId: string): Promise<UserSessionInfo[]> {
    const user = this.#users.get(userId)
    if (!user) return []
    const tag = this.userTag(userId)
    const sessions: UserSessionInfo[] = []
    for (const key of user.sessions) {
      const storageId = key.slice(tag.length + 1)
      const record = this.#live({ tag, storageId })
      if (!record) continue
      sessions.push({
        handle: storageId,
        createdAt: new Date(Number(record.fields.get(META.createdAt))),
        lastSeenAt: new Date(Number(record.fields.get(META.touchedAt))),
        expiresAt: new Date(Number(record.fields.get(META.expiresAt))),
        userAgent: record.fields.get(META.userAgent),
      })
    }
    return sessions.sort((a, b) => b.lastSeenAt.getTime() - a.lastSeenAt.getTime())
  }

  async destroyUser(
    userId: string,
    only: readonly string[] | undefined,
    except: string | undefined,
  ): Promise<number> {
    const user = this.#user(userId)
    const tag = this.userTag(userId)
    if (only === undefined) user.epoch++
    let ended = 0
    for (const key of [...user.sessions]) {
      const storageId = key.slice(tag.length + 1)
      if (storageId === except || (only !== undefined && !only.includes(storageId))) continue
      if (this.#live({ tag, storageId })) ended++
      this.#drop(key)
    }
    if (only === undefined && except !== undefined) {
      const kept = this.#live({ tag, storageId: except })
      if (kept) kept.epoch = user.epoch
    }
    return ended
  }

  #live(at: SessionLocation): MemoryRecord | undefined {
    const key = keyOf(at)
    const record = this.#records.get(key)
    if (record && record.expiresAt <= Date.now()) {
      this.#drop(key)
      return undefined
    }
    return record
  }

  #drop(key: string): void {
    const record = this.#records.get(key)
    if (!record) return
    this.#records.delete(key)
    if (record.userId !== undefined) this.#users.get(record.userId)?.sessions.delete(key)
  }

  #user(userId: string): { epoch: number; sessions: Set<string> } {
    let user = this.#users.get(userId)
    if (!user) {
      user = { epoch: 0, sessions: new Set() }
      this.#users.set(userId, user)
    }
    return user
  }
}

function keyOf(at: SessionLocation): string {
  return `${at.tag}:${at.storageId}`
}
