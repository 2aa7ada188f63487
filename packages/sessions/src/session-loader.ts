import { readCookies } from './cookie-header.js'
import { SessionStoreUnavailableError } from './errors.js'
import type { Observability } from './observability.js'
import type { ResolvedOptions } from './options.js'
import { DATA_PREFIX, META } from './redis-keys.js'
import { Session, type SessionData, type SessionEngine } from './session.js'
import { newSessionId, randomTag, storageIdOf } from './session-id.js'
import type { SessionLocation, SessionStore } from './session-store.js'
import type { SessionWriter } from './session-writer.js'
import { type CheckedCookie, VerifiedCookieCache } from './verified-cookie-cache.js'

// Metric labels, made once: the hot path allocates none.
const FOUND = { result: 'found' } as const
const NEW = { result: 'new' } as const
const UNAVAILABLE = { result: 'unavailable' } as const

/**
 * From a request's cookie header to its session: verify the cookie (invalid ones never reach
 * the store), read the session it names, or start a fresh anonymous one.
 */
export class SessionLoader {
  readonly #options: ResolvedOptions
  readonly #store: SessionStore
  readonly #writer: SessionWriter
  readonly #observability: Observability
  readonly #verifiedCookies: VerifiedCookieCache
  readonly #engine: SessionEngine

  constructor(
    options: ResolvedOptions,
    store: SessionStore,
    writer: SessionWriter,
    observability: Observability,
    engine: SessionEngine,
  ) {
    this.#engine = engine
    this.#options = options
    this.#store = store
    this.#writer = writer
    this.#observability = observability
    this.#verifiedCookies = new VerifiedCookieCache(options.secrets, options.verifiedCookieCacheSize)
  }

  load<Data extends SessionData>(
    cookieHeader: string | undefined,
    rawUserAgent: string | undefined,
  ): Promise<Session<Data>> {
    const userAgent = rawUserAgent?.slice(0, this.#options.maxUserAgentLength)
    const values = readCookies(cookieHeader, this.#options.cookieName)
    if (values.length === 0) return Promise.resolve(this.#fresh(userAgent, false, false))
    if (values.length > 1) return this.#loadFirstLive(values, userAgent)
    // The common case, one cookie, without an async function's extra promise and turns.
    const verified = this.#verifiedCookies.check(values[0] as string)
    if (!verified) return Promise.resolve(this.#fresh(userAgent, true, false))
    return this.#loadVerified<Data>(verified, userAgent, true) as Promise<Session<Data>>
  }

  /**
   * With duplicates (a junk or stale cookie of the same name from another path or subdomain),
   * the first one that verifies and names a live session wins; a junk cookie placed first
   * neither logs the user out nor gets their real cookie cleared.
   */
  async #loadFirstLive<Data extends SessionData>(
    values: readonly string[],
    userAgent: string | undefined,
  ): Promise<Session<Data>> {
    for (const value of values) {
      const verified = this.#verifiedCookies.check(value)
      if (!verified) continue
      const session = await this.#loadVerified<Data>(verified, userAgent, false)
      if (session) return session
    }
    return this.#fresh(userAgent, true, false)
  }

  /** A new session ID and where it is stored: a logged-in user's sessions share the user's tag. */
  freshIdentity(userId: string | undefined): { sessionId: string; location: SessionLocation } {
    const sessionId = newSessionId()
    const tag = userId === undefined ? randomTag() : this.#store.userTag(userId)
    return { sessionId, location: { tag, storageId: storageIdOf(sessionId) } }
  }

  /**
   * The live session a verified cookie names; when it ended, a fresh one that clears the cookie
   * (`orFresh`) or undefined (the caller tries the next cookie).
   */
  #loadVerified<Data extends SessionData>(
    verified: CheckedCookie,
    userAgent: string | undefined,
    orFresh: boolean,
  ): Promise<Session<Data> | undefined> {
    const location = { tag: verified.tag, storageId: verified.storageId }
    return this.#store.read(location).then(
      (fields) =>
        this.#sessionOf<Data>(verified, location, fields, userAgent) ??
        (orFresh ? this.#fresh<Data>(userAgent, true, false) : undefined),
      (error: unknown) => {
        this.#observability.increment('sessions_loads_total', UNAVAILABLE)
        if (this.#options.onRedisDown === 'anonymous' && error instanceof SessionStoreUnavailableError) {
          this.#observability.report(error)
          return this.#fresh<Data>(userAgent, false, true)
        }
        throw error
      },
    )
  }

  /** The session stored `fields` describe, or undefined when they are not a live session. */
  #sessionOf<Data extends SessionData>(
    verified: CheckedCookie,
    location: SessionLocation,
    fields: Record<string, string>,
    userAgent: string | undefined,
  ): Session<Data> | undefined {
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
      now - touchedAt >= this.#options.idleTimeoutMs
    ) {
      return undefined
    }
    const stored = new Map<string, string>()
    for (const field in fields) {
      if (field.startsWith(DATA_PREFIX)) {
        this.#writer.readField(stored, location.storageId, field, fields[field] as string)
      }
    }
    this.#observability.increment('sessions_loads_total', FOUND)
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

  #fresh<Data extends SessionData>(
    userAgent: string | undefined,
    clearCookie: boolean,
    readOnly: boolean,
  ): Session<Data> {
    if (!readOnly) this.#observability.increment('sessions_loads_total', NEW)
    const now = Date.now()
    return new Session<Data>(this.#engine, {
      ...this.freshIdentity(undefined),
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
}
