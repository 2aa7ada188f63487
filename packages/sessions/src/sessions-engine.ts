import { SessionStateError, SessionStoreUnavailableError, SessionsClosedError } from './errors.js'
import { Observability } from './observability.js'
import type { ResolvedOptions } from './options.js'
import { DATA_PREFIX, META } from './redis-keys.js'
import { RedisSessionStore } from './redis-session-store.js'
import { type Session, type SessionData, type SessionEngine, stateOf } from './session.js'
import { SessionLoader } from './session-loader.js'
import type { SessionStore, UserSessionInfo } from './session-store.js'
import { SessionWriter } from './session-writer.js'
import type { CommitResult, DestroyAllOptions, SessionRequest, Sessions } from './sessions.js'
import { setCookieFor, setCookieForEarlyHeaders } from './set-cookie.js'

/**
 * The implementation behind the {@link Sessions} interface: the request lifecycle (load, commit,
 * save, reload), the per-user operations, and shutdown. Loading is `SessionLoader`'s, writing
 * `SessionWriter`'s, the cookie header `set-cookie.ts`'s; this class decides when each runs.
 */
export class SessionsEngine<Data extends SessionData = SessionData> implements Sessions<Data> {
  readonly #options: ResolvedOptions
  readonly #store: SessionStore
  /** The Redis store this instance created (and so stops on close); undefined for a user's store. */
  readonly #ownStore: RedisSessionStore | undefined
  readonly #observability: Observability
  readonly #writer: SessionWriter
  readonly #loader: SessionLoader
  /**
   * The request property holding its session (one symbol per instance, so two instances never
   * mix): a plain property is a shape transition, cheaper than a WeakMap entry per request.
   */
  readonly #slot = Symbol('@scale/sessions session')
  #closed = false

  constructor(options: ResolvedOptions) {
    this.#options = options
    const observability = new Observability(options.logger, options.metrics, options.onError)
    this.#observability = observability
    this.#ownStore =
      options.store === undefined
        ? new RedisSessionStore({
            redis: options.redis as NonNullable<ResolvedOptions['redis']>,
            keyPrefix: options.keyPrefix,
            commandTimeoutMs: options.commandTimeoutMs,
            absoluteTimeoutMs: options.absoluteTimeoutMs,
            coalesceWrites: options.coalesceWrites,
            circuitBreaker: options.circuitBreaker,
            onCircuitChange: (open, cause) => this.#circuitChanged(open, cause),
          })
        : undefined
    this.#store = options.store ?? (this.#ownStore as RedisSessionStore)
    this.#writer = new SessionWriter(options, this.#store, observability)
    const engine: SessionEngine = {
      fields: options.fields,
      absoluteTimeoutMs: options.absoluteTimeoutMs,
      destroyStored: async (location, userId) => {
        this.#assertOpen('destroy')
        await this.#store.destroy(location, userId)
      },
      freshIdentity: (userId) => this.#loader.freshIdentity(userId),
      reportError: (error) => observability.report(error),
    }
    this.#loader = new SessionLoader(options, this.#store, this.#writer, observability, engine)
  }

  get cookieAttributes(): { path: string; httpOnly: boolean; secure: boolean; sameSite: string } {
    const { path, httpOnly, secure, sameSite } = this.#options.cookie
    return { path, httpOnly, secure, sameSite }
  }

  get cookieName(): string {
    return this.#options.cookieName
  }

  load(request: SessionRequest): Promise<Session<Data>> {
    if (this.#closed) return Promise.reject(new SessionsClosedError('load'))
    return this.#counted(this.#loader.load<Data>(request.cookie, request.userAgent))
  }

  commit(session: Session<Data>): Promise<CommitResult> {
    const state = stateOf(session as Session<SessionData>)
    if (state.committed) return Promise.resolve({ setCookie: setCookieFor(this.#options, state) })
    if (this.#closed) return Promise.reject(new SessionsClosedError('commit'))
    state.committed = true
    // Plain `then`s rather than an async function: this runs at the end of every request.
    let writing: Promise<void>
    try {
      writing = this.#writer.write(state)
    } catch (error) {
      writing = Promise.reject(error)
    }
    return writing.then(
      () => ({ setCookie: setCookieFor(this.#options, state) }),
      (error: unknown) => {
        if (
          this.#options.onRedisDown === 'anonymous' &&
          error instanceof SessionStoreUnavailableError &&
          state.userId === undefined
        ) {
          this.#observability.report(error)
          state.readOnly = true
          return { setCookie: setCookieFor(this.#options, state) }
        }
        state.committed = false
        this.#observability.countError(error)
        throw error
      },
    )
  }

  async save(session: Session<Data>): Promise<void> {
    this.#assertOpen('save')
    const state = stateOf(session as Session<SessionData>)
    if (state.committed) {
      throw new SessionStateError(
        'save() was called after the session was committed (the response had ended).',
        { action: 'save' },
      )
    }
    await this.#counted(this.#writer.write(state))
    // What was written is now the stored state: the end-of-request commit writes only what
    // changes after this point.
    for (const [key, raw] of state.changes) {
      if (raw === null) state.stored.delete(key)
      else state.stored.set(key, raw)
    }
    state.changes.clear()
  }

  async reload(session: Session<Data>): Promise<void> {
    this.#assertOpen('reload')
    const state = stateOf(session as Session<SessionData>)
    if (state.isNew || state.ended) {
      throw new SessionStateError('reload(): the session is not stored (new, or ended meanwhile).', {
        action: 'reload',
      })
    }
    const fields = await this.#counted(this.#store.read(state.location))
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

  listUserSessions(userId: string): Promise<UserSessionInfo[]> {
    if (this.#closed) return Promise.reject(new SessionsClosedError('listUserSessions'))
    return this.#counted(this.#store.listUser(userId))
  }

  async destroyUserSession(userId: string, handle: string): Promise<boolean> {
    this.#assertOpen('destroyUserSession')
    const ended = await this.#counted(this.#store.destroyUser(userId, [handle], undefined))
    if (ended > 0) this.#observability.increment('sessions_revocations_total', { scope: 'one' }, ended)
    return ended > 0
  }

  async destroyAllUserSessions(userId: string, options: DestroyAllOptions = {}): Promise<number> {
    this.#assertOpen('destroyAllUserSessions')
    const ended = await this.#counted(this.#store.destroyUser(userId, undefined, options.except))
    this.#observability.increment('sessions_revocations_total', { scope: 'all' }, ended)
    return ended
  }

  cookieForHeaders(session: Session<Data>): string | undefined {
    return setCookieForEarlyHeaders(this.#options, stateOf(session as Session<SessionData>))
  }

  of(request: object): Session<Data> {
    const session =
      (request as Record<symbol, Session<Data> | undefined>)[this.#slot] ??
      ((request as { [CARRIER]?: SessionCarrier })[CARRIER]?.sessionFor(this) as Session<Data> | undefined)
    if (!session) {
      throw new SessionStateError(
        'No session is attached to this request: is the session middleware installed before this route?',
        { method: 'of' },
      )
    }
    return session
  }

  /** Associates a session with a request object, for `of(req)`; the adapters call it. */
  attach(request: object, session: Session<Data>): void {
    ;(request as Record<symbol, unknown>)[this.#slot] = session
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    // Nothing to wait for: the breaker's probe is abandoned, not awaited, so a hung Redis
    // cannot hold up shutdown. The Redis client is the app's; it stays open.
    this.#ownStore?.close()
  }

  #assertOpen(method: string): void {
    if (this.#closed) throw new SessionsClosedError(method)
  }

  /** Passes a store call's outcome through, counting an error that reaches the app. */
  #counted<T>(pending: Promise<T>): Promise<T> {
    // Without a metrics hook there is nothing to count: no extra promise on the hot path.
    if (!this.#observability.counting) return pending
    return pending.catch((error: unknown) => {
      this.#observability.countError(error)
      throw error
    })
  }

  #circuitChanged(open: boolean, cause: unknown): void {
    const observability = this.#observability
    observability.increment('sessions_circuit_transitions_total', { state: open ? 'open' : 'closed' })
    observability.observe('sessions_circuit_open', open ? 1 : 0)
    // Opening is reported like any handled outage (logger.warn, onError); closing only logged.
    if (open)
      observability.report(new SessionStoreUnavailableError('circuit breaker', cause, { circuit: 'open' }))
    else {
      try {
        observability.logger.info(
          { circuit: 'closed' },
          '[@scale/sessions] Redis answers again: circuit closed',
        )
      } catch {
        // A throwing logger changes nothing here.
      }
    }
  }
}

/**
 * For an adapter that keeps more per request than the session (the Express adapter's
 * `req.session` view): it stores one object under {@link CARRIER} that also answers
 * `sessions.of(req)`, instead of a second property. Every property added to Express's `req`
 * measured about a microsecond per request. Not public API.
 */
export interface SessionCarrier {
  /** The session of this request for that `Sessions` instance, if it carries it. */
  sessionFor(sessions: object): Session<SessionData> | undefined
}

/** Where a {@link SessionCarrier} sits on a request. */
export const CARRIER = Symbol('@scale/sessions session carrier')

/** For the adapters: puts a request's session where `sessions.of(req)` finds it. Not public API. */
export function attachSession<Data extends SessionData>(
  sessions: Sessions<Data>,
  request: object,
  session: Session<Data>,
): void {
  ;(sessions as SessionsEngine<Data>).attach(request, session)
}
