import { readCookies, serializeSetCookie } from './cookie-header.js'
import { signCookieValue } from './cookie-signing.js'
import { SessionHeadersSentError, SessionStateError, SessionStoreUnavailableError } from './errors.js'
import { FieldEncryption } from './field-encryption.js'
import { type ResolvedOptions, resolveOptions, type SessionsOptions } from './options.js'
import { DATA_PREFIX, META } from './redis-keys.js'
import { RedisSessionStore } from './redis-session-store.js'
import { Session, type SessionData, type SessionEngine, type SessionState, stateOf } from './session.js'
import { newSessionId, randomTag, storageIdOf } from './session-id.js'
import type { SessionLocation, SessionStore, UserSessionInfo } from './session-store.js'
import type { DataOf, StandardSchemaV1 } from './standard-schema.js'
import { type CheckedCookie, VerifiedCookieCache } from './verified-cookie-cache.js'

/** What `load` needs from a request: its headers, nothing framework-specific. */
export interface SessionRequest {
  /** The `Cookie` request header. */
  cookie?: string | undefined
  /** The `User-Agent` request header, kept for the per-user session list. */
  userAgent?: string | undefined
}

/** What a request's end produces for the response. */
export interface CommitResult {
  /** A `Set-Cookie` header value to send, when the cookie must be set, re-signed or cleared. */
  setCookie: string | undefined
}

/** Options of {@link Sessions.destroyAllUserSessions}. */
export interface DestroyAllOptions {
  /** Keep this session (by `session.handle`), e.g. "log out all other devices". @default undefined */
  except?: string
}

/**
 * The framework-free core: `load` a request's session from its cookie header, let the handler
 * use it, `commit` it to get the `Set-Cookie` header. The adapters (`@scale/sessions/node`,
 * `/express`, `/fastify`, `/hono`) only call these two.
 */
export class Sessions<Data extends SessionData = SessionData> {
  readonly #options: ResolvedOptions
  readonly #store: SessionStore
  readonly #engine: SessionEngine
  readonly #verifiedCookies: VerifiedCookieCache
  readonly #encryption: FieldEncryption | undefined
  /**
   * The request property holding its session (one symbol per instance, so two instances never
   * mix): a plain property is a shape transition, cheaper than a WeakMap entry per request.
   */
  readonly #slot = Symbol('@scale/sessions session')

  /** @internal use {@link createSessions}. */
  constructor(options: ResolvedOptions) {
    this.#options = options
    this.#verifiedCookies = new VerifiedCookieCache(options.secrets, options.verifiedCookieCacheSize)
    this.#encryption = options.encryption && new FieldEncryption(options.encryption)
    this.#store =
      options.store ??
      new RedisSessionStore({
        redis: options.redis as NonNullable<ResolvedOptions['redis']>,
        keyPrefix: options.keyPrefix,
        commandTimeoutMs: options.redisTimeoutMs,
        absoluteTimeoutMs: options.absoluteTimeoutMs,
        coalesceWrites: options.coalesceWrites,
        circuitBreaker: options.circuitBreaker,
        onCircuitChange: (open, cause) => {
          if (open)
            this.#report(new SessionStoreUnavailableError('circuit breaker', cause, { circuit: 'open' }))
        },
      })
    this.#engine = {
      fields: options.fields,
      absoluteTimeoutMs: options.absoluteTimeoutMs,
      destroyStored: async (location, userId) => {
        await this.#store.destroy(location, userId)
      },
      freshIdentity: (userId) => this.#freshIdentity(userId),
      reportError: (error) => this.#report(error),
    }
  }

  /** The cookie's attributes (after defaults), e.g. for express-session's `req.session.cookie`. */
  get cookieAttributes(): { path: string; httpOnly: boolean; secure: boolean; sameSite: string } {
    const { path, httpOnly, secure, sameSite } = this.#options.cookie
    return { path, httpOnly, secure, sameSite }
  }

  /** The cookie's name, including the `__Host-` prefix when it applies. */
  get cookieName(): string {
    return this.#options.cookieName
  }

  /**
   * The session a request's cookie names, or a fresh anonymous one when the cookie is missing,
   * malformed, forged, signed with an unknown key, or names a session that ended. Invalid cookies
   * never reach Redis. Costs one HGETALL for a well-signed cookie.
   *
   * @throws {SessionStoreUnavailableError} Redis did not answer (policy `'fail-closed'`).
   * @example
   * ```ts
   * const session = await sessions.load({ cookie: req.headers.cookie, userAgent: req.headers['user-agent'] })
   * ```
   */
  async load(request: SessionRequest): Promise<Session<Data>> {
    const options = this.#options
    const userAgent = request.userAgent?.slice(0, options.maxUserAgentLength)
    const values = readCookies(request.cookie, options.cookieName)
    if (values.length === 0) return this.#fresh(userAgent, false, false)
    // With duplicates (a junk or stale cookie of the same name from another path or subdomain),
    // the first one that verifies and names a live session wins; a junk cookie placed first
    // neither logs the user out nor gets their real cookie cleared.
    for (const value of values) {
      const verified = this.#verifiedCookies.check(value)
      if (!verified) continue
      const session = await this.#loadVerified(verified, userAgent)
      if (session) return session
    }
    return this.#fresh(userAgent, true, false)
  }

  /** The live session a verified cookie names, or undefined when it ended. */
  async #loadVerified(
    verified: CheckedCookie,
    userAgent: string | undefined,
  ): Promise<Session<Data> | undefined> {
    const options = this.#options
    const location = { tag: verified.tag, storageId: verified.storageId }
    let fields: Record<string, string>
    try {
      fields = await this.#store.read(location)
    } catch (error) {
      if (options.onRedisDown === 'anonymous' && error instanceof SessionStoreUnavailableError) {
        this.#report(error)
        return this.#fresh(userAgent, false, true)
      }
      throw error
    }
    const createdAt = Number(fields[META.createdAt])
    const expiresAt = Number(fields[META.expiresAt])
    const touchedAt = Number(fields[META.touchedAt])
    const now = Date.now()
    // Redis TTLs end sessions too; checking here as well keeps the timeouts exact even when a
    // TTL has not fired yet or a key was restored from a backup without its TTL.
    if (
      !Number.isFinite(createdAt) ||
      !Number.isFinite(expiresAt) ||
      !Number.isFinite(touchedAt) ||
      now >= expiresAt ||
      now - touchedAt >= options.idleTimeoutMs
    ) {
      return undefined
    }
    const stored = new Map<string, string>()
    for (const [field, value] of Object.entries(fields)) {
      if (field.startsWith(DATA_PREFIX)) this.#storeRead(stored, location.storageId, field, value)
    }
    return new Session<Data>(this.#engine, {
      sessionId: verified.sessionId,
      location,
      isNew: false,
      userId: fields[META.userId],
      userAgent,
      persistent: fields[META.persistent] !== '0',
      createdAt,
      expiresAt,
      touchedAt,
      stored,
      changes: new Map(),
      predecessor: undefined,
      headersSentFor: undefined,
      needsResign: verified.secretIndex > 0,
      sendCookie: false,
      clearCookie: false,
      readOnly: false,
      committed: false,
      ended: false,
      parsed: new Map(),
    })
  }

  /**
   * Writes what the request changed and returns the `Set-Cookie` header to send. A session
   * nobody changed costs no write, except the idle-expiry extension at most once per
   * `touchAfterMs`. Idempotent: a second call returns the first result.
   *
   * @throws {SessionStoreUnavailableError} Redis did not answer (policy `'fail-closed'`, or a login while Redis is down).
   * @example
   * ```ts
   * const { setCookie } = await sessions.commit(session)
   * if (setCookie) res.setHeader('set-cookie', setCookie)
   * ```
   */
  async commit(session: Session<Data>): Promise<CommitResult> {
    const state = stateOf(session as Session<SessionData>)
    if (state.committed) return { setCookie: this.#cookieFor(state) }
    state.committed = true
    try {
      await this.#write(state)
    } catch (error) {
      if (
        this.#options.onRedisDown === 'anonymous' &&
        error instanceof SessionStoreUnavailableError &&
        state.userId === undefined
      ) {
        this.#report(error)
        state.readOnly = true
      } else {
        state.committed = false
        throw error
      }
    }
    return { setCookie: this.#cookieFor(state) }
  }

  /**
   * Writes what the request changed so far, now, and keeps the session open: later changes are
   * written by `commit` (or another `save`), and the Set-Cookie is still sent by `commit`. For
   * work that must see the session stored before the response ends (a redirect followed by a
   * request on another connection, a WebSocket upgrade); express-session's `req.session.save()`.
   *
   * @throws {SessionStoreUnavailableError} Redis did not answer.
   */
  async save(session: Session<Data>): Promise<void> {
    const state = stateOf(session as Session<SessionData>)
    if (state.committed) {
      throw new SessionStateError(
        'save() was called after the session was committed (the response had ended).',
        {
          action: 'save',
        },
      )
    }
    await this.#write(state)
    // What was written is now the stored state: the end-of-request commit writes only what
    // changes after this point.
    for (const [key, raw] of state.changes) {
      if (raw === null) state.stored.delete(key)
      else state.stored.set(key, raw)
    }
    state.changes.clear()
  }

  /**
   * Re-reads the session's data from the store, dropping this request's unsaved changes
   * (express-session's `req.session.reload()`).
   *
   * @throws {SessionStateError} the session is not stored (new, or ended meanwhile).
   */
  async reload(session: Session<Data>): Promise<void> {
    const state = stateOf(session as Session<SessionData>)
    if (state.isNew || state.ended) {
      throw new SessionStateError('reload(): the session is not stored (new, or ended meanwhile).', {
        action: 'reload',
      })
    }
    const fields = await this.#store.read(state.location)
    if (fields[META.createdAt] === undefined) {
      state.ended = true
      state.clearCookie = true
      throw new SessionStateError('reload(): the session no longer exists (it was destroyed or expired).', {
        action: 'reload',
      })
    }
    state.stored.clear()
    state.changes.clear()
    state.parsed.clear()
    for (const [field, value] of Object.entries(fields)) {
      if (field.startsWith(DATA_PREFIX)) this.#storeRead(state.stored, state.location.storageId, field, value)
    }
  }

  /**
   * The sessions of a user, most recently used first (created, last seen, user agent).
   *
   * @example
   * ```ts
   * for (const s of await sessions.listUserSessions(user.id)) console.log(s.userAgent, s.lastSeenAt)
   * ```
   */
  listUserSessions(userId: string): Promise<UserSessionInfo[]> {
    return this.#store.listUser(userId)
  }

  /**
   * Ends one session of a user, by the `handle` from {@link listUserSessions}. A handle that is
   * not among this user's sessions is ignored, so a user can only end their own sessions.
   * @returns whether a live session was ended
   */
  async destroyUserSession(userId: string, handle: string): Promise<boolean> {
    return (await this.#store.destroyUser(userId, [handle], undefined)) > 0
  }

  /**
   * Ends every session of a user at once ("log out everywhere", after a password change), in one
   * atomic step: all of a user's sessions share a Redis Cluster slot.
   * @returns how many live sessions were ended
   * @example
   * ```ts
   * await sessions.destroyAllUserSessions(user.id, { except: session.handle })
   * ```
   */
  destroyAllUserSessions(userId: string, options: DestroyAllOptions = {}): Promise<number> {
    return this.#store.destroyUser(userId, undefined, options.except)
  }

  /**
   * The Set-Cookie header to send with headers that leave now, before the session is saved (a
   * streamed response, `writeHead`, `flushHeaders`): the adapters call it from their header
   * hook, as express-session's `on-headers` does. The cookie is decided from what the session
   * will store; what the request changes after this point is still saved when the response
   * ends, except a new session whose cookie could not be sent (reported as
   * {@link SessionHeadersSentError}, never stored). After `commit` it returns what `commit` did.
   */
  cookieForHeaders(session: Session<Data>): string | undefined {
    const state = stateOf(session as Session<SessionData>)
    if (state.committed) return this.#cookieFor(state)
    if (state.headersSentFor) return undefined
    const creates = state.isNew && !state.readOnly && (state.userId !== undefined || hasData(state))
    state.headersSentFor = { sessionId: state.sessionId, issued: creates }
    if (creates) {
      return serializeSetCookie(
        this.#options.cookieName,
        signCookieValue(this.#options.secrets, state.location.tag, state.sessionId),
        state.persistent ? (state.expiresAt - Date.now()) / 1000 : undefined,
        this.#options.cookie,
      )
    }
    return this.#cookieFor(state)
  }

  /** Associates a session with a request object, for the adapters' `getSession(req)`. */
  attach(request: object, session: Session<Data>): void {
    ;(request as Record<symbol, unknown>)[this.#slot] = session
  }

  /** The session an adapter attached to this request object. */
  of(request: object): Session<Data> {
    const session = (request as Record<symbol, Session<Data> | undefined>)[this.#slot]
    if (!session) {
      throw new SessionStateError(
        'No session is attached to this request: is the session middleware installed before this route?',
      )
    }
    return session
  }

  async #write(state: SessionState): Promise<void> {
    if (state.ended) return
    if (state.readOnly) {
      if (state.userId !== undefined) {
        throw new SessionStoreUnavailableError('login', new Error('Redis was down when the request started'))
      }
      return
    }
    const options = this.#options
    const now = Date.now()
    const ttlMs = Math.max(1, Math.min(options.idleTimeoutMs, state.expiresAt - now))
    if (state.isNew) {
      await this.#create(state, now, ttlMs)
      return
    }
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
    if (setPairs.length === 2 && deleted.length === 0) return
    const applied = await this.#store.update(
      state.location,
      state.userId,
      touchDue ? ttlMs : 0,
      setPairs,
      deleted,
    )
    // The session was destroyed (logout elsewhere, destroy-all) while this request ran: its
    // changes are dropped on purpose, and the cookie is cleared.
    if (!applied) {
      state.clearCookie = true
      state.ended = true
    } else if (touchDue) state.touchedAt = now
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
        this.#report(new SessionHeadersSentError(state.predecessor ? 'regenerate' : 'first write'))
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
      throw new SessionStateError('A new session ID collided with a live session; retry the request.')
    }
    state.predecessor = undefined
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
  #storeRead(stored: Map<string, string>, storageId: string, field: string, value: string): void {
    const key = field.slice(DATA_PREFIX.length)
    if (!this.#encryption) {
      stored.set(key, value)
      return
    }
    try {
      stored.set(key, this.#encryption.decrypt(storageId, key, value))
    } catch (error) {
      this.#report(error as Error)
    }
  }

  /** The Set-Cookie header the current state calls for, if any. */
  #cookieFor(state: SessionState): string | undefined {
    // The header hook already sent what could be sent.
    if (state.headersSentFor) return undefined
    const options = this.#options
    if (state.sendCookie || (state.needsResign && !state.isNew && !state.clearCookie)) {
      return serializeSetCookie(
        options.cookieName,
        signCookieValue(options.secrets, state.location.tag, state.sessionId),
        state.persistent ? (state.expiresAt - Date.now()) / 1000 : undefined,
        options.cookie,
      )
    }
    if (state.clearCookie) return serializeSetCookie(options.cookieName, '', 0, options.cookie)
    return undefined
  }

  #fresh(userAgent: string | undefined, clearCookie: boolean, readOnly: boolean): Session<Data> {
    const now = Date.now()
    const identity = this.#freshIdentity(undefined)
    return new Session<Data>(this.#engine, {
      ...identity,
      isNew: true,
      userId: undefined,
      userAgent,
      persistent: true,
      createdAt: now,
      expiresAt: now + this.#options.absoluteTimeoutMs,
      touchedAt: now,
      stored: new Map(),
      changes: new Map(),
      predecessor: undefined,
      headersSentFor: undefined,
      needsResign: false,
      sendCookie: false,
      clearCookie,
      readOnly,
      committed: false,
      ended: false,
      parsed: new Map(),
    })
  }

  #freshIdentity(userId: string | undefined): { sessionId: string; location: SessionLocation } {
    const sessionId = newSessionId()
    const tag = userId === undefined ? randomTag() : this.#store.userTag(userId)
    return { sessionId, location: { tag, storageId: storageIdOf(sessionId) } }
  }

  #report(error: Error): void {
    try {
      this.#options.onError?.(error)
    } catch {
      // A throwing logger must not turn a handled problem into a failed request.
    }
  }
}

function hasData(state: SessionState): boolean {
  for (const raw of state.changes.values()) if (raw !== null) return true
  return false
}

/**
 * Creates the session engine over your ioredis client.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { createSessions } from '@scale/sessions'
 *
 * const sessions = createSessions<{ cart: string[] }>({
 *   redis: new Redis(),
 *   secrets: [process.env.SESSION_SECRET!],
 * })
 * ```
 */
export function createSessions<Fields extends Record<string, StandardSchemaV1>>(
  options: SessionsOptions<Fields> & { fields: Fields },
): Sessions<DataOf<Fields>>
export function createSessions<Data extends SessionData = SessionData>(
  options: SessionsOptions<Record<string, never>>,
): Sessions<Data>
export function createSessions(
  options: SessionsOptions<Record<string, StandardSchemaV1>>,
): Sessions<SessionData> {
  return new Sessions(resolveOptions(options))
}
