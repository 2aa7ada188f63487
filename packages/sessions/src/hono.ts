import type { MiddlewareHandler } from 'hono'
import { assertCsrf } from './csrf.js'
import { sessionErrorResponse, withSetCookie } from './fetch.js'
import type { Session, SessionData } from './session.js'
import type { Sessions } from './sessions.js'
import { attachSession } from './sessions-engine.js'

export { type FetchSessionHandler, withFetchSession } from './fetch.js'

/** Hono context variables set by {@link honoSession}. */
export interface SessionVariables<Data extends SessionData> {
  session: Session<Data>
}

/**
 * Hono middleware: loads the session (`c.get('session')`, or `sessions.of(c.req.raw)`), runs the
 * route, saves, adds the Set-Cookie. A Redis outage answers 503 with
 * `{ error: { code: 'E_SESSION_STORE_UNAVAILABLE' } }`.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { honoSession, type SessionVariables } from '@scale/sessions/hono'
 *
 * const app = new Hono<{ Variables: SessionVariables<{ theme: string }> }>()
 * app.use(honoSession(sessions))
 * app.get('/me', (c) => c.json({ user: c.get('session').userId ?? null }))
 * ```
 */
export function honoSession<Data extends SessionData>(
  sessions: Sessions<Data>,
): MiddlewareHandler<{ Variables: SessionVariables<Data> }> {
  return async (c, next) => {
    let session: Session<Data>
    try {
      session = await sessions.load({ cookie: c.req.header('cookie'), userAgent: c.req.header('user-agent') })
    } catch (error) {
      return sessionErrorResponse(error)
    }
    c.set('session', session)
    attachSession(sessions, c.req.raw, session)
    await next()
    try {
      const { setCookie } = await sessions.commit(session)
      const response = withSetCookie(c.res, setCookie)
      if (response !== c.res) replaceResponse(c, response)
    } catch (error) {
      replaceResponse(c, sessionErrorResponse(error))
    }
    return undefined
  }
}

/** Hono's `c.res` setter copies the old response's headers onto the new one; start clean instead. */
function replaceResponse(c: { res: Response | undefined }, response: Response): void {
  c.res = undefined
  c.res = response
}

/**
 * CSRF protection (synchronizer token) for Hono: unsafe methods must carry the token from
 * `csrfToken(c.get('session'))` in the `x-csrf-token` header or the `_csrf` form field;
 * otherwise 403 with `{ error: { code: 'E_SESSION_CSRF' } }`. Install after `honoSession`.
 *
 * @example
 * ```ts
 * app.use(honoSession(sessions), honoCsrf())
 * ```
 */
export function honoCsrf<Data extends SessionData>(): MiddlewareHandler<{
  Variables: SessionVariables<Data>
}> {
  return async (c, next) => {
    let token = c.req.header('x-csrf-token')
    const type = c.req.header('content-type') ?? ''
    if (token === undefined && /^(application\/x-www-form-urlencoded|multipart\/form-data)/.test(type)) {
      const form = await c.req.parseBody()
      if (typeof form._csrf === 'string') token = form._csrf
    }
    try {
      assertCsrf(c.get('session'), c.req.method, token)
    } catch (error) {
      return sessionErrorResponse(error)
    }
    await next()
    return undefined
  }
}
