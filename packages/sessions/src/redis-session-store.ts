import { createWriteCoalescer, type WriteCoalescer } from '@scale/ioredis-coalesce'
import type { Cluster, Redis } from 'ioredis'
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.js'
import { META, revocationKey, sessionKey, sessionKeyStem, userIndexKey } from './redis-keys.js'
import {
  createScript,
  destroyAllOfUserScript,
  destroyOneOfUserScript,
  destroyScript,
  rotateScript,
  updateScript,
} from './redis-scripts.js'
import { tagForUser } from './session-id.js'
import type {
  CreateOutcome,
  NewSessionRecord,
  SessionLocation,
  SessionStore,
  UserSessionInfo,
} from './session-store.js'
import { RedisDeadlines } from './with-timeout.js'

export type { SessionLocation, UserSessionInfo } from './session-store.js'

/** Options of the Redis store (resolved by `createSessions`). */
export interface RedisSessionStoreOptions {
  readonly redis: Redis | Cluster
  readonly keyPrefix: string
  /** Deadline of one Redis call. */
  readonly commandTimeoutMs: number
  readonly absoluteTimeoutMs: number
  readonly coalesceWrites: boolean
  /** `false` turns the circuit breaker off. */
  readonly circuitBreaker: Required<CircuitBreakerOptions> | false
  /** Told when the breaker opens (with the failure that opened it) and closes. */
  readonly onCircuitChange?: (open: boolean, cause: unknown) => void
}

/** The Redis side of sessions: every command this package sends is in this class. */
export class RedisSessionStore implements SessionStore {
  readonly #redis: Redis | Cluster
  readonly #prefix: string
  readonly #deadlines: RedisDeadlines
  readonly #absoluteTimeoutMs: number
  readonly #writes: WriteCoalescer
  readonly #breaker: CircuitBreaker | undefined

  constructor(options: RedisSessionStoreOptions) {
    const redis = options.redis
    this.#redis = redis
    this.#writes = createWriteCoalescer(redis, { enabled: options.coalesceWrites })
    this.#prefix = options.keyPrefix
    this.#absoluteTimeoutMs = options.absoluteTimeoutMs
    const onChange = options.onCircuitChange ?? (() => {})
    const probeDeadline = new RedisDeadlines(options.commandTimeoutMs)
    this.#breaker =
      options.circuitBreaker === false
        ? undefined
        : new CircuitBreaker(
            options.circuitBreaker,
            () => probeDeadline.run('probe', () => redis.ping()),
            onChange,
          )
    this.#deadlines = new RedisDeadlines(options.commandTimeoutMs, this.#breaker)
  }

  userTag(userId: string): string {
    return tagForUser(this.#prefix, userId)
  }

  /** Whether the circuit breaker is open (Redis known down: calls fail fast). */
  get circuitOpen(): boolean {
    return this.#breaker?.isOpen ?? false
  }

  /** Stops the breaker's probes; the Redis client is the app's and stays open. */
  close(): void {
    this.#breaker?.stop()
  }

  /** One Redis call under the deadline, through the breaker. */
  #call<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const rejection = this.#breaker?.rejection(operation)
    if (rejection) return Promise.reject(rejection)
    return this.#deadlines.run(operation, call)
  }

  /** All fields of a session, or an empty object when it does not exist. One HGETALL. */
  read(at: SessionLocation): Promise<Record<string, string>> {
    this.#writes.hold()
    return this.#call('load', () => this.#redis.hgetall(sessionKey(this.#prefix, at.tag, at.storageId)))
  }

  async create(record: NewSessionRecord): Promise<CreateOutcome> {
    const { location: at, userId, ttlMs, lifetimeMs, fields, replaces } = record
    const key = sessionKey(this.#prefix, at.tag, at.storageId)
    let result: unknown
    this.#writes.hold()
    if (replaces !== undefined && userId !== undefined) {
      const keys = [
        sessionKey(this.#prefix, replaces.tag, replaces.storageId),
        key,
        userIndexKey(this.#prefix, at.tag, userId),
        revocationKey(this.#prefix, at.tag, userId),
      ]
      result = await this.#call('rotate', () =>
        rotateScript.run(this.#redis, keys, [
          ttlMs,
          lifetimeMs,
          replaces.storageId,
          at.storageId,
          record.maxSessionsPerUser ?? 0,
          sessionKeyStem(this.#prefix, at.tag),
          ...fields,
        ]),
      )
    } else {
      const keys = [key]
      if (userId !== undefined) {
        keys.push(userIndexKey(this.#prefix, at.tag, userId), revocationKey(this.#prefix, at.tag, userId))
      }
      result = await this.#call('create', () =>
        // The index lives as long as the longest session in it can: its absolute lifetime.
        createScript.run(this.#redis, keys, [
          ttlMs,
          lifetimeMs,
          at.storageId,
          record.maxSessionsPerUser ?? 0,
          sessionKeyStem(this.#prefix, at.tag),
          ...fields,
        ]),
      )
    }
    return result === 1 ? 'created' : result === -1 ? 'collision' : 'revoked'
  }

  /** Returns false when the session no longer exists (destroyed, rotated, revoked or expired meanwhile). */
  update(
    at: SessionLocation,
    userId: string | undefined,
    ttlMs: number,
    setPairs: readonly string[],
    deleted: readonly string[],
  ): Promise<boolean> {
    const key = sessionKey(this.#prefix, at.tag, at.storageId)
    if (ttlMs === 0 && deleted.length === 0 && setPairs[0] === META.createdAt) {
      return this.#setFields(key, setPairs)
    }
    const keys = [key]
    if (userId !== undefined) keys.push(revocationKey(this.#prefix, at.tag, userId))
    this.#writes.hold()
    return this.#call('save', () =>
      updateScript.run(this.#redis, keys, [ttlMs, setPairs.length / 2, ...setPairs, ...deleted]),
    ).then((applied) => applied === 1)
  }

  /**
   * The common write (fields set, no expiry change, anonymous or logged in) as one plain HSET
   * instead of a script: one command instead of four. It leads with `~c` at its current value,
   * which every live session has, so the reply (the number of fields that were new) says
   * whether the session existed: all new means it was gone (destroyed, rotated, revoked or
   * expired) and the HSET just made a stray hash, which is deleted at once. The stray lacks the
   * expiry field `~x`, so neither a request reading it nor a rotation script takes it for a
   * live session meanwhile.
   *
   * Why no revocation-epoch check is needed here: every revocation (logout, destroyUserSession,
   * log-out-everywhere, a rotation) deletes the record in the same atomic step that ends it, and
   * every logged-in record enters the user's index in the same script that creates it, so "the
   * record exists" already means "not revoked". The epoch check of the update script (run at
   * each touch) stays as the backstop for a record the index lost (evicted by a maxmemory policy).
   */
  #setFields(key: string, setPairs: readonly string[]): Promise<boolean> {
    this.#writes.hold()
    const fieldCount = setPairs.length / 2
    // The stray's DEL hangs off the HSET itself, inside the one deadline, not off the caller's
    // result: an HSET that timed out (Redis hung) is still applied when Redis resumes, and its
    // stray hash, which has no TTL, would otherwise stay forever.
    return this.#call('save', () =>
      this.#redis
        .hset(key, ...setPairs)
        .then((added) => (added < fieldCount ? true : this.#redis.del(key).then(() => false))),
    )
  }

  async destroy(at: SessionLocation, userId: string | undefined): Promise<boolean> {
    const keys = [sessionKey(this.#prefix, at.tag, at.storageId)]
    if (userId !== undefined) keys.push(userIndexKey(this.#prefix, at.tag, userId))
    this.#writes.hold()
    const existed = await this.#call('destroy', () => destroyScript.run(this.#redis, keys, [at.storageId]))
    return existed === 1
  }

  async listUser(userId: string): Promise<UserSessionInfo[]> {
    const tag = tagForUser(this.#prefix, userId)
    const index = userIndexKey(this.#prefix, tag, userId)
    return this.#call('list user sessions', async () => {
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

  /** Ends the given sessions of a user, or all of them (revoking) when `only` is undefined. */
  async destroyUser(
    userId: string,
    only: readonly string[] | undefined,
    except: string | undefined,
  ): Promise<number> {
    const tag = tagForUser(this.#prefix, userId)
    const index = userIndexKey(this.#prefix, tag, userId)
    if (only === undefined) {
      const keys = [index, revocationKey(this.#prefix, tag, userId)]
      const args = [sessionKeyStem(this.#prefix, tag), except ?? '', this.#absoluteTimeoutMs]
      return this.#call('destroy user sessions', async () =>
        Number(await destroyAllOfUserScript.run(this.#redis, keys, args)),
      )
    }
    let ended = 0
    for (const storageId of new Set(only)) {
      if (storageId === except) continue
      const keys = [index, sessionKey(this.#prefix, tag, storageId)]
      ended += Number(
        await this.#call('destroy user session', () =>
          destroyOneOfUserScript.run(this.#redis, keys, [storageId]),
        ),
      )
    }
    return ended
  }
}
