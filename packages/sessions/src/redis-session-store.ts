import { createWriteCoalescer, type WriteCoalescer } from '@scale/ioredis-coalesce'
import type { Cluster, Redis } from 'ioredis'
import { META, sessionKey, userIndexKey } from './redis-keys.js'
import { createScript, destroyManyScript, destroyScript, updateScript } from './redis-scripts.js'
import { tagForUser } from './session-id.js'
import { withRedisDeadline } from './with-timeout.js'

/** Where a session lives in Redis. */
export interface SessionLocation {
  readonly tag: string
  readonly storageId: string
}

/** One entry of a user's session list. */
export interface UserSessionInfo {
  /** Opaque, non-secret handle of the session (the hash of its ID): pass it to `destroyUserSession`. */
  readonly handle: string
  readonly createdAt: Date
  /** Last time the session was used, accurate to `touchAfterMs`. */
  readonly lastSeenAt: Date
  readonly expiresAt: Date
  readonly userAgent: string | undefined
}

/** The Redis side of sessions: every command this package sends is in this class. */
export class RedisSessionStore {
  readonly #redis: Redis | Cluster
  readonly #prefix: string
  readonly #timeoutMs: number
  readonly #writes: WriteCoalescer

  constructor(redis: Redis | Cluster, prefix: string, timeoutMs: number, coalesceWrites: boolean) {
    this.#redis = redis
    this.#writes = createWriteCoalescer(redis, { enabled: coalesceWrites })
    this.#prefix = prefix
    this.#timeoutMs = timeoutMs
  }

  /** All fields of a session, or an empty object when it does not exist. One HGETALL. */
  read(at: SessionLocation): Promise<Record<string, string>> {
    this.#writes.hold()
    return withRedisDeadline('load', this.#timeoutMs, () =>
      this.#redis.hgetall(sessionKey(this.#prefix, at.tag, at.storageId)),
    )
  }

  async create(
    at: SessionLocation,
    userId: string | undefined,
    ttlMs: number,
    lifetimeMs: number,
    fields: readonly string[],
  ): Promise<boolean> {
    const keys = [sessionKey(this.#prefix, at.tag, at.storageId)]
    if (userId !== undefined) keys.push(userIndexKey(this.#prefix, at.tag, userId))
    this.#writes.hold()
    const created = await withRedisDeadline('create', this.#timeoutMs, () =>
      // The index lives as long as the longest session in it can: its absolute lifetime.
      createScript.run(this.#redis, keys, [ttlMs, lifetimeMs, at.storageId, ...fields]),
    )
    return created === 1
  }

  /** Returns false when the session no longer exists (destroyed or expired meanwhile). */
  async update(
    at: SessionLocation,
    ttlMs: number,
    setPairs: readonly string[],
    deleted: readonly string[],
  ): Promise<boolean> {
    const key = sessionKey(this.#prefix, at.tag, at.storageId)
    this.#writes.hold()
    const applied = await withRedisDeadline('save', this.#timeoutMs, () =>
      updateScript.run(this.#redis, [key], [ttlMs, setPairs.length / 2, ...setPairs, ...deleted]),
    )
    return applied === 1
  }

  async destroy(at: SessionLocation, userId: string | undefined): Promise<boolean> {
    const keys = [sessionKey(this.#prefix, at.tag, at.storageId)]
    if (userId !== undefined) keys.push(userIndexKey(this.#prefix, at.tag, userId))
    this.#writes.hold()
    const existed = await withRedisDeadline('destroy', this.#timeoutMs, () =>
      destroyScript.run(this.#redis, keys, [at.storageId]),
    )
    return existed === 1
  }

  async listUser(userId: string): Promise<UserSessionInfo[]> {
    const tag = tagForUser(this.#prefix, userId)
    const index = userIndexKey(this.#prefix, tag, userId)
    return withRedisDeadline('list user sessions', this.#timeoutMs, async () => {
      const storageIds = await this.#redis.smembers(index)
      if (storageIds.length === 0) return []
      const pipeline = this.#redis.pipeline()
      for (const storageId of storageIds) {
        pipeline.hmget(
          sessionKey(this.#prefix, tag, storageId),
          META.createdAt,
          META.touchedAt,
          META.expiresAt,
          META.userAgent,
        )
      }
      const replies = (await pipeline.exec()) ?? []
      const sessions: UserSessionInfo[] = []
      const gone: string[] = []
      for (const [i, storageId] of storageIds.entries()) {
        const [error, values] = replies[i] ?? [new Error('no reply'), null]
        if (error) throw error
        const [created, touched, expires, userAgent] = values as (string | null)[]
        if (created == null || touched == null || expires == null) {
          gone.push(storageId)
          continue
        }
        sessions.push({
          handle: storageId,
          createdAt: new Date(Number(created)),
          lastSeenAt: new Date(Number(touched)),
          expiresAt: new Date(Number(expires)),
          userAgent: userAgent ?? undefined,
        })
      }
      // Sessions that expired by TTL leave their index entry behind; prune them while we are here.
      if (gone.length > 0) await this.#redis.srem(index, ...gone)
      return sessions.sort((a, b) => b.lastSeenAt.getTime() - a.lastSeenAt.getTime())
    })
  }

  /** Ends the given sessions of a user (all of them when `storageIds` is undefined). */
  async destroyUser(
    userId: string,
    only: readonly string[] | undefined,
    except: string | undefined,
  ): Promise<number> {
    const tag = tagForUser(this.#prefix, userId)
    const index = userIndexKey(this.#prefix, tag, userId)
    return withRedisDeadline('destroy user sessions', this.#timeoutMs, async () => {
      const members = await this.#redis.smembers(index)
      const targets = members.filter(
        (storageId) => storageId !== except && (only === undefined || only.includes(storageId)),
      )
      if (targets.length === 0) return 0
      const keys = [index, ...targets.map((storageId) => sessionKey(this.#prefix, tag, storageId))]
      return Number(await destroyManyScript.run(this.#redis, keys, targets))
    })
  }
}
