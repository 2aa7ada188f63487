import { SessionDataInvalidError, SessionDataNotSerializableError, SessionStateError } from './errors.js'
import type { RegenerateOptions, SessionData, SessionEngine, SessionState } from './session-state.js'

export type { RegenerateOptions, SessionData, SessionEngine, SessionState } from './session-state.js'

let readState: (session: Session<SessionData>) => SessionState
let rotate: (session: Session<SessionData>, options: RegenerateOptions) => void

/** @internal the engine's access to a session's state (a private field, not public API). */
export function stateOf(session: Session<SessionData>): SessionState {
  return readState(session)
}

/** @internal `regenerate` without the promise: its effect is synchronous (the store is written on save). */
export function regenerateNow(session: Session<SessionData>, options: RegenerateOptions): void {
  rotate(session, options)
}

/**
 * One request's view of a session. Reads come from what was loaded; `set` and `delete` are
 * buffered and written field by field when the request ends, and only if something changed.
 * Values are stored as JSON: mutate a returned object and `set` it again to save the change.
 */
export class Session<Data extends SessionData = SessionData> {
  readonly #engine: SessionEngine
  readonly #state: SessionState

  static {
    readState = (session) => session.#state
    rotate = (session, options) => session.#regenerate(options)
  }

  /** @internal created by `Sessions.load`. */
  constructor(engine: SessionEngine, state: SessionState) {
    this.#engine = engine
    this.#state = state
  }

  /**
   * A non-secret handle naming this session in {@link Sessions.listUserSessions} (the hash of
   * its ID, never the ID itself), e.g. to mark "this device" in a session list.
   */
  get handle(): string {
    return this.#state.location.storageId
  }

  /** The logged-in user, set only through `regenerate({ userId })`. */
  get userId(): string | undefined {
    return this.#state.userId
  }

  /** Whether its cookie survives a browser restart (see `regenerate({ persistent })`). */
  get persistent(): boolean {
    return this.#state.persistent
  }

  /** True until the session has been stored in Redis. */
  get isNew(): boolean {
    return this.#state.isNew
  }

  get createdAt(): Date {
    return new Date(this.#state.createdAt)
  }

  /** When the absolute timeout ends the session, however active it is. */
  get expiresAt(): Date {
    return new Date(this.#state.expiresAt)
  }

  get<Key extends keyof Data & string>(key: Key): Data[Key] | undefined {
    const state = this.#state
    if (state.parsed.has(key)) return state.parsed.get(key) as Data[Key]
    const raw = state.changes.has(key) ? state.changes.get(key) : state.stored.get(key)
    if (raw == null) return undefined
    let value: unknown
    try {
      value = JSON.parse(raw)
    } catch (error) {
      this.#engine.reportError(new SessionDataNotSerializableError(key, error))
      return undefined
    }
    const schema = this.#engine.fields?.[key]
    if (schema) {
      const result = schema['~standard'].validate(value)
      if (result instanceof Promise || result.issues) {
        // Stored data that no longer fits the schema (e.g. after a deploy changed it) reads as
        // absent instead of failing the request; the next `set` replaces it.
        if (!(result instanceof Promise)) {
          this.#engine.reportError(new SessionDataInvalidError(key, result.issues ?? []))
        }
        return undefined
      }
      value = result.value
    }
    state.parsed.set(key, value)
    return value as Data[Key]
  }

  has(key: keyof Data & string): boolean {
    return this.get(key) !== undefined
  }

  /** Buffers a change of one field; a value equal to the stored one is no change. */
  set<Key extends keyof Data & string>(key: Key, value: Data[Key]): void {
    const state = this.#writable('set')
    const schema = this.#engine.fields?.[key]
    let stored: unknown = value
    if (schema) {
      const result = schema['~standard'].validate(value)
      if (result instanceof Promise) {
        throw new SessionStateError(
          `The schema of field "${key}" validates asynchronously; use a synchronous schema.`,
        )
      }
      if (result.issues) throw new SessionDataInvalidError(key, result.issues)
      stored = result.value
    }
    let raw: string | undefined
    try {
      raw = JSON.stringify(stored)
    } catch (error) {
      throw new SessionDataNotSerializableError(key, error)
    }
    if (raw === undefined) throw new SessionDataNotSerializableError(key, new TypeError('value is undefined'))
    state.parsed.delete(key)
    if (state.stored.get(key) === raw) state.changes.delete(key)
    else state.changes.set(key, raw)
  }

  /** Buffers the removal of one field. */
  delete(key: keyof Data & string): void {
    const state = this.#writable('delete')
    state.parsed.delete(key)
    if (state.stored.has(key)) state.changes.set(key, null)
    else state.changes.delete(key)
  }

  /** Names of the fields that currently have a value. */
  keys(): (keyof Data & string)[] {
    const state = this.#state
    const names = new Set([...state.stored.keys(), ...state.changes.keys()])
    return [...names].filter((name) => this.get(name) !== undefined) as (keyof Data & string)[]
  }

  /** A snapshot of all fields. */
  toJSON(): Partial<Data> {
    // fromEntries defines own properties, so a field named "__proto__" stays a plain field.
    return Object.fromEntries(this.keys().map((key) => [key, this.get(key)])) as Partial<Data>
  }

  /**
   * Replaces the session ID (call it on login and on any privilege change: it defeats session
   * fixation). The new session replaces the old one when the request's session is saved, in one
   * atomic step that also checks the old one was not ended meanwhile: a rotation of a session
   * that was logged out, destroyed or revoked ("log out everywhere") while this request ran
   * creates nothing and clears the cookie instead. A login (`userId` differs from the current
   * one) deletes the old session and creates the new one.
   *
   * @example
   * ```ts
   * await session.regenerate({ userId: user.id, keepData: true })
   * ```
   */
  async regenerate(options: RegenerateOptions = {}): Promise<void> {
    this.#regenerate(options)
  }

  #regenerate(options: RegenerateOptions): void {
    const state = this.#writable('regenerate')
    const userId = 'userId' in options ? options.userId : state.userId
    // A user object (`{ userId: user }` for `user.id`) would be stored as "[object Object]":
    // every such login would share one user, its index and its "log out everywhere".
    if (userId !== undefined && (typeof userId !== 'string' || userId === '')) {
      throw new SessionStateError(
        `regenerate(): userId must be a non-empty string (got ${userId === '' ? 'an empty string' : typeof userId}); nothing changed.`,
        { action: 'regenerate' },
      )
    }
    const kept = new Map<string, string>()
    if (options.keepData) {
      for (const [key, raw] of state.stored) kept.set(key, raw)
      for (const [key, raw] of state.changes) {
        if (raw === null) kept.delete(key)
        else kept.set(key, raw)
      }
    }
    if (!state.isNew && state.predecessor === undefined) {
      state.predecessor = { location: state.location, userId: state.userId }
    }
    if (options.persistent !== undefined) state.persistent = options.persistent
    const now = Date.now()
    if (userId !== state.userId) {
      state.createdAt = now
      state.expiresAt = now + this.#engine.absoluteTimeoutMs
    }
    this.#startOver(state, userId, now)
    for (const [key, raw] of kept) state.changes.set(key, raw)
  }

  /**
   * Ends the session (logout): deleted from Redis before this resolves, and the response clears
   * the cookie. The request continues with a fresh anonymous session.
   *
   * @example
   * ```ts
   * await session.destroy()
   * ```
   */
  async destroy(): Promise<void> {
    const state = this.#writable('destroy')
    const stored = state.isNew ? state.predecessor : { location: state.location, userId: state.userId }
    if (stored) await this.#engine.destroyStored(stored.location, stored.userId)
    state.predecessor = undefined
    const now = Date.now()
    state.createdAt = now
    state.expiresAt = now + this.#engine.absoluteTimeoutMs
    state.clearCookie = true
    this.#startOver(state, undefined, now)
  }

  /** A new ID and no data: stored on commit. */
  #startOver(state: SessionState, userId: string | undefined, now: number): void {
    // The client holds a cookie for the session being replaced (or was about to get one): clear
    // it unless the new session is stored and its cookie sent instead.
    if (state.sendCookie || !state.isNew) state.clearCookie = true
    state.sendCookie = false
    state.ended = false
    const identity = this.#engine.freshIdentity(userId)
    state.sessionId = identity.sessionId
    state.location = identity.location
    state.isNew = true
    state.userId = userId
    state.touchedAt = now
    state.needsResign = false
    state.stored.clear()
    state.changes.clear()
    state.parsed.clear()
  }

  #writable(action: string): SessionState {
    const state = this.#state
    if (state.committed) {
      throw new SessionStateError(
        `session.${action}() was called after the session was saved (the response had ended); change the session before sending the response.`,
        { action },
      )
    }
    return state
  }
}
