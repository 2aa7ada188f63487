import { readCookies, serializeSetCookie } from './cookie-header.js'
import { signCookieValue } from './cookie-signing.js'
import { SessionHeadersSentError, SessionStateError, SessionStoreUnavailableError } from './errors.js'
import { type ResolvedOptions, resolveOptions, type SessionsOptions } from './options.js'
import { DATA_PREFIX, META } from './redis-keys.js'
import { RedisSessionStore } from './redis-session-store.js'
import { Session, type SessionData, type SessionEngine, type SessionState, stateOf } from './session.js'
import { newSessionId, randomTag, storageIdOf } from './session-id.js'
import type { SessionLocation, SessionStore, UserSessionInfo } from './session-store.js'
import { hasData, SessionWriter } from './session-writer.js'
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
  readonly #writer: SessionWriter
  /**
   * The request property holding its session (one symbol per instance, so two instances never
   * mix): a plain property is a shape transition, cheaper than a WeakMap entry per request.
   */
  readonly #slot = Symbol('@scale/sessions session')

  /** @internal use {@link createSessions}. */
  constructor(options: ResolvedOptions) {
    this.#options = options
    this.#verifiedCookies = new VerifiedCookieCache(options.secrets, options.verifiedCookieCacheSize)
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
    this.#writer = new SessionWriter(options, this.#store, (error) => this.#report(error))
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
      if (field.startsWith(DATA_PREFIX)) this.#writer.readField(stored, location.storageId, field, value)
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
      await this.#writer.write(state)
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
    await this.#writer.write(state)
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
      if (field.startsWith(DATA_PREFIX))
        this.#writer.readField(state.stored, state.location.storageId, field, value)
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
        { method: 'of' },
      )
    }
    return session
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
