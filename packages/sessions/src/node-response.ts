import type { IncomingMessage, ServerResponse } from 'node:http'
import { errorResponseOf } from './error-response.js'
import type { Session, SessionData } from './session.js'
import type { Sessions } from './sessions.js'

/** Loads the session of a Node request (the headers `load` reads). */
export function loadFromNodeRequest<Data extends SessionData>(
  sessions: Sessions<Data>,
  req: IncomingMessage,
): Promise<Session<Data>> {
  return sessions.load({ cookie: req.headers.cookie, userAgent: req.headers['user-agent'] })
}

/** Answers with the error's status (503 for Redis outages) when nothing was sent yet. */
export function sendError(res: ServerResponse, error: unknown, end: ServerResponse['end'] = res.end): void {
  if (res.headersSent) {
    res.destroy(error instanceof Error ? error : undefined)
    return
  }
  const { status, body } = errorResponseOf(error)
  for (const name of res.getHeaderNames()) res.removeHeader(name)
  res.statusCode = status
  res.setHeader('content-type', 'application/json; charset=utf-8')
  res.setHeader('content-length', Buffer.byteLength(body))
  ;(end as (chunk: string) => ServerResponse).call(res, body)
}

/**
 * Makes `res.end()` save the session first, then send the response with its Set-Cookie. The
 * client receives the response only once the write is in Redis, so its next request, on any
 * server, reads what this one wrote. A failed save turns the response into the error response
 * (503 for a Redis outage) instead of pretending it worked.
 * Responses streamed with `res.write()` send their headers early: call
 * `await sessions.commit(session)` and set the cookie yourself before the first write.
 */
export function commitBeforeEnd<Data extends SessionData>(
  sessions: Sessions<Data>,
  session: Session<Data>,
  res: ServerResponse,
): void {
  const end = res.end
  let ending = false
  res.end = function endAfterCommit(this: ServerResponse, ...args: unknown[]): ServerResponse {
    if (ending) return this
    ending = true
    sessions.commit(session).then(
      ({ setCookie }) => {
        if (setCookie && !res.headersSent) res.appendHeader('set-cookie', setCookie)
        ;(end as (...a: unknown[]) => ServerResponse).apply(res, args)
      },
      (error: unknown) => sendError(res, error, end),
    )
    return this
  } as ServerResponse['end']
}
