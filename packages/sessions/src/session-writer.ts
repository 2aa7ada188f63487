import { SessionHeadersSentError, SessionStateError, SessionStoreUnavailableError } from './errors.js'
import { FieldEncryption } from './field-encryption.js'
import type { Observability } from './observability.js'
import type { ResolvedOptions } from './options.js'
import { DATA_PREFIX, META } from './redis-keys.js'
import type { SessionState } from './session.js'
import type { SessionStore } from './session-store.js'

const DONE = Promise.resolve()
// Metric labels, made once: the hot path allocates none.
const UPDATE = { kind: 'update' } as const
const CREATE = { kind: 'create' } as const

/** Whether the request set any data field. */
export function hasData(state: SessionState): boolean {
  for (const raw of state.changes.values()) if (raw !== null) return true
  return false
}

/**
 * How a session's state becomes store writes and stored fields become state again: creates,
 * atomic rotations, field-wise updates, the throttled touch, and encryption at rest. The
 * `Sessions` engine decides when; this decides what is written.
 */
export class SessionWriter {
  readonly #options: ResolvedOptions
  readonly #store: SessionStore
  readonly #encryption: FieldEncryption | undefined
  readonly #observability: Observability

  constructor(options: ResolvedOptions, store: SessionStore, observability: Observability) {
    this.#options = options
    this.#store = store
    this.#encryption = options.encryption && new FieldEncryption(options.encryption)
    this.#observability = observability
  }

  /** Stores what the request changed: a create, a rotation, or a field-wise update (with the touch when due). */
  write(state: SessionState): Promise<void> {
    if (state.ended) return DONE
    if (state.readOnly) {
      if (state.userId !== undefined) {
        return Promise.reject(
          new SessionStoreUnavailableError('login', new Error('Redis was down when the request started')),
        )
      }
      return DONE
    }
    const options = this.#options
    const now = Date.now()
    const ttlMs = Math.max(1, Math.min(options.idleTimeoutMs, state.expiresAt - now))
    if (state.isNew) return this.#create(state, now, ttlMs)
    // `~c` (createdAt) is rewritten with the value it has: a no-op for a live session, and the
    // sign by which the Redis store sees, from one HSET's reply, that the session was gone.
    const setPairs: string[] = [META.createdAt, String(state.createdAt)]
    const deleted: string[] = []
    for (const [key, raw] of state.changes) {
      if (raw === null) deleted.push(DATA_PREFIX + key)
      else setPairs.push(DATA_PREFIX + key, this.#sealed(state, key, raw))
    }
    const touchDue = now - state.touchedAt >= options.touchAfterMs
    if (touchDue) setPairs.push(META.touchedAt, String(now))
    if (setPairs.length === 2 && deleted.length === 0) return DONE
    // A plain `then` rather than an async function: this runs on every request that writes.
    return this.#store
      .update(state.location, state.userId, touchDue ? ttlMs : 0, setPairs, deleted)
      .then((applied) => {
        this.#observability.increment('sessions_saves_total', UPDATE)
        // The session was destroyed (logout elsewhere, destroy-all) while this request ran: its
        // changes are dropped on purpose, and the cookie is cleared.
        if (!applied) {
          state.clearCookie = true
          state.ended = true
        } else if (touchDue) state.touchedAt = now
      })
  }

  /**
   * Stores a new session. A rotation of a logged-in session goes through the store's atomic
   * replace (the old one must still exist and not be revoked); a login or an anonymous rotation
   * deletes the old session first, since it needs no lineage check: the new session does not
   * inherit the old one's authentication.
   */
  async #create(state: SessionState, now: number, ttlMs: number): Promise<void> {
    const sent = state.headersSentFor
    if (sent !== undefined && !(sent.issued && sent.sessionId === state.sessionId)) {
      if (state.userId !== undefined || hasData(state) || state.predecessor !== undefined) {
        this.#observability.report(
          new SessionHeadersSentError(state.predecessor ? 'regenerate' : 'first write'),
        )
      }
      return
    }
    const predecessor = state.predecessor
    const rotation =
      predecessor !== undefined && predecessor.userId !== undefined && predecessor.userId === state.userId
    if (predecessor !== undefined && !rotation) {
      await this.#store.destroy(predecessor.location, predecessor.userId)
      state.predecessor = undefined
    }
    const dataPairs: string[] = []
    for (const [key, raw] of state.changes) {
      if (raw !== null) dataPairs.push(DATA_PREFIX + key, this.#sealed(state, key, raw))
    }
    if (state.userId === undefined && dataPairs.length === 0) return
    const fields = [
      META.createdAt,
      String(state.createdAt),
      META.expiresAt,
      String(state.expiresAt),
      META.touchedAt,
      String(now),
      ...dataPairs,
    ]
    if (state.userId !== undefined) fields.push(META.userId, state.userId)
    if (!state.persistent) fields.push(META.persistent, '0')
    if (state.userAgent) fields.push(META.userAgent, state.userAgent)
    const outcome = await this.#store.create({
      location: state.location,
      userId: state.userId,
      ttlMs,
      lifetimeMs: Math.max(1, state.expiresAt - now),
      fields,
      ...(rotation ? { replaces: predecessor.location } : {}),
      ...(this.#options.maxSessionsPerUser !== undefined && state.userId !== undefined
        ? { maxSessionsPerUser: this.#options.maxSessionsPerUser }
        : {}),
    })
    if (outcome === 'collision') {
      throw new SessionStateError('A new session ID collided with a live session; retry the request.', {
        action: 'create',
      })
    }
    state.predecessor = undefined
    this.#observability.increment('sessions_saves_total', CREATE)
    if (outcome === 'created' && rotation) this.#observability.increment('sessions_rotations_total')
    if (outcome === 'revoked') {
      state.ended = true
      state.clearCookie = false
      // The session this request rotated was ended while it ran (or another tab's request
      // rotated it first): the revocation wins and nothing is stored. No Set-Cookie either: a
      // sibling's rotation may have given the browser a live cookie this must not clear, and a
      // dead cookie is cleared by the next request anyway.
      return
    }
    state.isNew = false
    state.sendCookie = true
    state.touchedAt = now
  }

  /** A field's JSON as the store keeps it: encrypted when encryption at rest is on. */
  #sealed(state: SessionState, key: string, raw: string): string {
    return this.#encryption ? this.#encryption.encrypt(state.location.storageId, key, raw) : raw
  }

  /** Adds one stored field to `stored`, decrypted; a value that does not decrypt reads as absent. */
  readField(stored: Map<string, string>, storageId: string, field: string, value: string): void {
    const key = field.slice(DATA_PREFIX.length)
    if (!this.#encryption) {
      stored.set(key, value)
      return
    }
    try {
      stored.set(key, this.#encryption.decrypt(storageId, key, value))
    } catch (error) {
      this.#observability.report(error as Error)
    }
  }
}
