import type { IncomingMessage, ServerResponse } from 'node:http'
import { commitBeforeEnd, loadFromNodeRequest, sendError } from './node-response.js'
import type { Session, SessionData } from './session.js'
import type { Sessions } from './sessions.js'
import { attachSession } from './sessions-engine.js'

/** A `node:http` request handler that also receives the request's session. */
export type NodeSessionHandler<Data extends SessionData> = (
  req: IncomingMessage,
  res: ServerResponse,
  session: Session<Data>,
) => void | Promise<void>

/**
 * Wraps a `node:http` handler: loads the session before it runs and saves it when the response
 * ends. A Redis outage answers 503 with `{ error: { code: 'E_SESSION_STORE_UNAVAILABLE' } }`;
 * a handler that throws answers 500 (when nothing was sent yet).
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * import { withSession } from '@scale/sessions/node'
 *
 * createServer(withSession(sessions, (req, res, session) => {
 *   session.set('visits', (session.get('visits') ?? 0) + 1)
 *   res.end(String(session.get('visits')))
 * })).listen(3000)
 * ```
 */
export function withSession<Data extends SessionData>(
  sessions: Sessions<Data>,
  handler: NodeSessionHandler<Data>,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void (async () => {
      let session: Session<Data>
      try {
        session = await loadFromNodeRequest(sessions, req)
      } catch (error) {
        sendError(res, error)
        return
      }
      attachSession(sessions, req, session)
      commitBeforeEnd(sessions, session, res)
      try {
        await handler(req, res, session)
      } catch (error) {
        sendError(res, error)
      }
    })()
  }
}
