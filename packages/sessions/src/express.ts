import type { IncomingMessage, ServerResponse } from 'node:http'
import { assertCsrf } from './csrf.js'
import { errorResponseOf } from './error-response.js'
import { SessionError } from './errors.js'
import { ExpressSessionView, type UserIdFrom } from './express-session-view.js'
import { type CommitHooks, commitBeforeEnd, loadFromNodeRequest } from './node-response.js'
import type { Session, SessionData } from './session.js'
import type { Sessions } from './sessions.js'
import { CARRIER, type SessionCarrier } from './sessions-engine.js'

/** Express (4 and 5) and Connect middleware signature, typed without depending on Express. */
export type ExpressSessionMiddleware = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void

/** Express error-handling middleware signature. */
export type ExpressErrorMiddleware = (
  error: unknown,
  req: IncomingMessage,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void

/**
 * One request's session as Express sees it: what `req.session` and `req.sessionID` read, and
 * the hooks of the response's commit. One object per request (not a closure per hook).
 */
class RequestSlot implements CommitHooks, SessionCarrier {
  /** The view once made (null: not yet; anything else: what the app assigned). */
  view: unknown = null
  readonly #sessions: Sessions<SessionData>
  readonly #session: Session<SessionData>
  readonly #req: IncomingMessage
  readonly #userIdFrom: UserIdFrom
  readonly #next: (error?: unknown) => void

  constructor(
    sessions: Sessions<SessionData>,
    session: Session<SessionData>,
    req: IncomingMessage,
    userIdFrom: UserIdFrom,
    next: (error?: unknown) => void,
  ) {
    this.#sessions = sessions
    this.#session = session
    this.#req = req
    this.#userIdFrom = userIdFrom
    this.#next = next
  }

  sessionFor(sessions: object): Session<SessionData> | undefined {
    return sessions === this.#sessions ? this.#session : undefined
  }

  /** `req.session` is made on first use: an app that only uses `sessions.of(req)` pays nothing for it. */
  make(): ExpressSessionView {
    return new ExpressSessionView(this.#sessions, this.#session, this.#req, this.#userIdFrom)
  }

  handle(): string {
    return this.#session.handle
  }

  beforeSave(): void {
    if (this.view instanceof ExpressSessionView) this.view.sync()
  }

  onSaveError(error: unknown, res: ServerResponse): void {
    if (res.headersSent) {
      // A streamed response already sent its status: end the connection rather than the
      // response, so the client sees a failure, not a success the server could not save.
      res.destroy(error instanceof Error ? error : undefined)
      return
    }
    // The route's own headers (Content-Length of the body it meant to send) must not leak into
    // the error response.
    for (const name of res.getHeaderNames()) res.removeHeader(name)
    this.#next(forExpress(error))
  }
}

/**
 * Where a request keeps its slot: a symbol-keyed own property, a plain shape transition (a
 * WeakMap entry per request measured costlier in GC). The slot is also the request's session
 * carrier (`sessions.of(req)` reads it), so one property serves both.
 */
type WithSlot = { [CARRIER]?: RequestSlot }
const prototypesWithAccessors = new WeakSet<object>()

/**
 * Gives requests `session` and `sessionID` accessors. They are defined once on the request's
 * prototype (Express's `app.request`, or `IncomingMessage.prototype` on bare `node:http`), not
 * per request: defining accessors on each request object turned it into a slow dictionary-mode
 * object and cost about 30 µs of CPU per request in the bench. A request this middleware did
 * not handle behaves as before: assigning `req.session` defines a plain own property.
 */
function attachSlot(req: IncomingMessage, slot: RequestSlot): void {
  ;(req as WithSlot)[CARRIER] = slot
  const proto = Object.getPrototypeOf(req) as object | null
  if (proto === null || Object.hasOwn(req, 'session')) {
    // Someone set `req.session` before us (another session middleware): shadow it per request.
    slot.view = slot.make()
    Object.defineProperty(req, 'session', {
      configurable: true,
      enumerable: true,
      writable: true,
      value: slot.view,
    })
    return
  }
  if (prototypesWithAccessors.has(proto)) return
  prototypesWithAccessors.add(proto)
  Object.defineProperty(proto, 'session', {
    configurable: true,
    get(this: object) {
      const own = (this as WithSlot)[CARRIER]
      if (!own) return undefined
      if (own.view === null) own.view = own.make()
      return own.view
    },
    set(this: object, value: unknown) {
      const own = (this as WithSlot)[CARRIER]
      if (own) own.view = value
      else
        Object.defineProperty(this, 'session', {
          configurable: true,
          enumerable: true,
          writable: true,
          value,
        })
    },
  })
  Object.defineProperty(proto, 'sessionID', {
    configurable: true,
    get(this: object) {
      return (this as WithSlot)[CARRIER]?.handle()
    },
    set(this: object, value: unknown) {
      Object.defineProperty(this, 'sessionID', {
        configurable: true,
        enumerable: true,
        writable: true,
        value,
      })
    },
  })
}

/**
 * The error handed to Express: the package's own error, with its stack reduced to its first
 * line. Express's default handler prints `err.stack` outside production; a Redis outage's
 * frames say nothing to a client and much about the server. `status` 503 comes from
 * `statusCode`, and `expose` marks the message as safe to show (the http-errors convention).
 */
function forExpress(error: unknown): unknown {
  if (!(error instanceof SessionError)) return error
  Object.defineProperty(error, 'stack', {
    value: `${error.name} (${error.code}): ${error.message}`,
    configurable: true,
    writable: true,
  })
  Object.assign(error, { status: error.statusCode, expose: true })
  return error
}

/** Options of {@link expressSession}. */
export interface ExpressSessionOptions {
  /**
   * Where the logged-in user is read from `req.session`, so passport logins land in the per-user
   * index (`listUserSessions`, `destroyAllUserSessions`) and rotate the session ID. See
   * {@link UserIdFrom}.
   * @default 'passport'
   */
  userIdFrom?: UserIdFrom
}

/**
 * Express middleware: loads the session and saves it when the response ends. Two views of one
 * session: `sessions.of(req)` (this package's typed API) and `req.session` with
 * express-session's shape (data as properties; `regenerate`, `destroy`, `save`, `reload`,
 * `touch`, `id`, `cookie`), so passport 0.7, connect-flash and other express-session middleware
 * work unchanged. `req.sessionID` is the session's non-secret handle.
 *
 * A failure to load and a failure to save take the same way: `next(error)`, so your error
 * handler (or Express's default) answers both, with `status` 503 for a Redis outage and no
 * stack trace. Add {@link sessionErrorHandler} for the package's JSON error body.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { expressSession } from '@scale/sessions/express'
 *
 * const app = express()
 * app.use(expressSession(sessions))
 * app.get('/me', (req, res) => { res.json({ user: sessions.of(req).userId ?? null }) })
 * ```
 */
export function expressSession<Data extends SessionData>(
  sessions: Sessions<Data>,
  options: ExpressSessionOptions = {},
): ExpressSessionMiddleware {
  const userIdFrom = options.userIdFrom ?? 'passport'
  const core = sessions as unknown as Sessions<SessionData>
  return (req, res, next) => {
    loadFromNodeRequest(sessions, req).then(
      (session: Session<Data>) => {
        const slot = new RequestSlot(core, session as Session<SessionData>, req, userIdFrom, next)
        attachSlot(req, slot)
        commitBeforeEnd(sessions, session, res, slot)
        next()
      },
      (error: unknown) => next(forExpress(error)),
    )
  }
}

/**
 * Express error handler answering the package's errors with its JSON body (the same body the
 * node, Fastify and Hono adapters send): `{ error: { code, message } }`, status 503 for a Redis
 * outage. Other errors pass on to your next error handler. Install it after your routes.
 *
 * @example
 * ```ts
 * app.use(expressSession(sessions))
 * app.get('/me', handler)
 * app.use(sessionErrorHandler())
 * ```
 */
export function sessionErrorHandler(): ExpressErrorMiddleware {
  return (error, _req, res, next) => {
    if (!(error instanceof SessionError) || res.headersSent) {
      next(error)
      return
    }
    const { status, body } = errorResponseOf(error)
    res.statusCode = status
    res.setHeader('content-type', 'application/json; charset=utf-8')
    res.setHeader('content-length', Buffer.byteLength(body))
    res.end(body)
  }
}

export { type ExpressSessionCookie, ExpressSessionView, type UserIdFrom } from './express-session-view.js'

/**
 * CSRF protection (synchronizer token) for Express: unsafe methods must carry the token from
 * `csrfToken(sessions.of(req))` in the `x-csrf-token` header or, with a body parser, the `_csrf`
 * field; otherwise `next(SessionCsrfError)` (403). Install after `expressSession`.
 *
 * @example
 * ```ts
 * app.use(expressSession(sessions), express.urlencoded(), expressCsrf(sessions))
 * ```
 */
export function expressCsrf<Data extends SessionData>(sessions: Sessions<Data>): ExpressSessionMiddleware {
  return (req, _res, next) => {
    const header = req.headers['x-csrf-token']
    const body = (req as IncomingMessage & { body?: { _csrf?: unknown } }).body
    const token =
      typeof header === 'string' ? header : typeof body?._csrf === 'string' ? body._csrf : undefined
    try {
      assertCsrf(sessions.of(req), req.method ?? 'GET', token)
      next()
    } catch (error) {
      next(forExpress(error))
    }
  }
}
