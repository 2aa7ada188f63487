import type { StandardSchemaV1 } from '@standard-schema/spec'
import { resolveOptions, type SessionsOptions } from './options.js'
import type { Session, SessionData } from './session.js'
import type { UserSessionInfo } from './session-store.js'
import { SessionsEngine } from './sessions-engine.js'
import type { DataOf } from './standard-schema.js'

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
 * The framework-free core that {@link createSessions} returns: `load` a request's session from
 * its cookie header, let the handler use it, `commit` it to get the `Set-Cookie` header. The
 * adapters (`@scale/sessions/node`, `/express`, `/fastify`, `/hono`) only call these two.
 */
export interface Sessions<Data extends SessionData = SessionData> {
  /** The cookie's attributes (after defaults), e.g. for express-session's `req.session.cookie`. */
  readonly cookieAttributes: { path: string; httpOnly: boolean; secure: boolean; sameSite: string }

  /** The cookie's name, including the `__Host-` prefix when it applies. */
  readonly cookieName: string

  /**
   * The session a request's cookie names, or a fresh anonymous one when the cookie is missing,
   * malformed, forged, signed with an unknown key, or names a session that ended. Invalid cookies
   * never reach Redis. Costs one HGETALL for a well-signed cookie.
   *
   * @throws {SessionStoreUnavailableError} Redis did not answer (policy `'fail-closed'`).
   * @throws {SessionsClosedError} after `close()`.
   * @example
   * ```ts
   * const session = await sessions.load({ cookie: req.headers.cookie, userAgent: req.headers['user-agent'] })
   * ```
   */
  load(request: SessionRequest): Promise<Session<Data>>

  /**
   * Writes what the request changed and returns the `Set-Cookie` header to send. A session
   * nobody changed costs no write, except the idle-expiry extension at most once per
   * `touchAfterMs`. Idempotent: a second call returns the first result.
   *
   * @throws {SessionStoreUnavailableError} Redis did not answer (policy `'fail-closed'`, or a login while Redis is down).
   * @throws {SessionsClosedError} after `close()` (for a session not committed yet).
   * @example
   * ```ts
   * const { setCookie } = await sessions.commit(session)
   * if (setCookie) res.setHeader('set-cookie', setCookie)
   * ```
   */
  commit(session: Session<Data>): Promise<CommitResult>

  /**
   * Writes what the request changed so far, now, and keeps the session open: later changes are
   * written by `commit` (or another `save`), and the Set-Cookie is still sent by `commit`. For
   * work that must see the session stored before the response ends (a redirect followed by a
   * request on another connection, a WebSocket upgrade); express-session's `req.session.save()`.
   *
   * @throws {SessionStoreUnavailableError} Redis did not answer.
   */
  save(session: Session<Data>): Promise<void>

  /**
   * Re-reads the session's data from the store, dropping this request's unsaved changes
   * (express-session's `req.session.reload()`).
   *
   * @throws {SessionStateError} the session is not stored (new, or ended meanwhile).
   */
  reload(session: Session<Data>): Promise<void>

  /**
   * The sessions of a user, most recently used first (created, last seen, user agent).
   *
   * @example
   * ```ts
   * for (const s of await sessions.listUserSessions(user.id)) console.log(s.userAgent, s.lastSeenAt)
   * ```
   */
  listUserSessions(userId: string): Promise<UserSessionInfo[]>

  /**
   * Ends one session of a user, by the `handle` from {@link listUserSessions}. A handle that is
   * not among this user's sessions is ignored, so a user can only end their own sessions.
   * @returns whether a live session was ended
   */
  destroyUserSession(userId: string, handle: string): Promise<boolean>

  /**
   * Ends every session of a user at once ("log out everywhere", after a password change), in one
   * atomic step: all of a user's sessions share a Redis Cluster slot.
   * @returns how many live sessions were ended
   * @example
   * ```ts
   * await sessions.destroyAllUserSessions(user.id, { except: session.handle })
   * ```
   */
  destroyAllUserSessions(userId: string, options?: DestroyAllOptions): Promise<number>

  /**
   * The Set-Cookie header to send with headers that leave now, before the session is saved (a
   * streamed response, `writeHead`, `flushHeaders`): the adapters call it from their header
   * hook, as express-session's `on-headers` does. The cookie is decided from what the session
   * will store; what the request changes after this point is still saved when the response
   * ends, except a new session whose cookie could not be sent (reported as
   * {@link SessionHeadersSentError}, never stored). After `commit` it returns what `commit` did.
   */
  cookieForHeaders(session: Session<Data>): string | undefined

  /**
   * The session the adapter loaded for this request (Express `req`, Fastify `request`, the
   * fetch `Request`).
   * @throws {SessionStateError} no session middleware ran for this request.
   */
  of(request: object): Session<Data>

  /**
   * Stops the Redis circuit breaker's probes; afterwards every method throws
   * {@link SessionsClosedError}. Idempotent and immediate (it waits on nothing). Your Redis
   * client stays open: quit it yourself after this. Close the HTTP server first, so requests in
   * flight can commit.
   */
  close(): Promise<void>
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
  return new SessionsEngine(resolveOptions(options))
}
