import type { MiddlewareHandler } from 'hono'
import { sessionErrorResponse, withSetCookie } from './fetch.js'
import type { Session, SessionData } from './session.js'
import type { Sessions } from './sessions.js'

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
    sessions.attach(c.req.raw, session)
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
