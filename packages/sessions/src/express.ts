import type { IncomingMessage, ServerResponse } from 'node:http'
import { commitBeforeEnd, loadFromNodeRequest } from './node-response.js'
import type { Session, SessionData } from './session.js'
import type { Sessions } from './sessions.js'

/** Express (4 and 5) and Connect middleware signature, typed without depending on Express. */
export type ExpressSessionMiddleware = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void

/**
 * Express middleware: loads the session (read it with `getSession(req)`) and saves it when the
 * response ends. Errors go to Express's error handling with `status` 503 for a Redis outage.
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
export function expressSession<Data extends SessionData>(sessions: Sessions<Data>): ExpressSessionMiddleware {
  return (req, res, next) => {
    loadFromNodeRequest(sessions, req).then(
      (session: Session<Data>) => {
        sessions.attach(req, session)
        commitBeforeEnd(sessions, session, res)
        next()
      },
      (error: unknown) => {
        // Express's final handler reads `status` / `statusCode` from the error: 503 here.
        next(error)
      },
    )
  }
}
