import { errorResponseOf } from './error-response.js'
import type { Session, SessionData } from './session.js'
import type { Sessions } from './sessions.js'
import { attachSession } from './sessions-engine.js'

/** A Fetch-API handler that also receives the request's session. */
export type FetchSessionHandler<Data extends SessionData> = (
  request: Request,
  session: Session<Data>,
) => Response | Promise<Response>

/** The JSON error response for a failed session operation (503 for a Redis outage). */
export function sessionErrorResponse(error: unknown): Response {
  const { status, body } = errorResponseOf(error)
  return new Response(body, { status, headers: { 'content-type': 'application/json; charset=utf-8' } })
}

/** Adds the Set-Cookie to a response, copying it when its headers are immutable (a fetched one). */
export function withSetCookie(response: Response, setCookie: string | undefined): Response {
  if (!setCookie) return response
  try {
    response.headers.append('set-cookie', setCookie)
    return response
  } catch {
    const copy = new Response(response.body, response)
    copy.headers.append('set-cookie', setCookie)
    return copy
  }
}

/**
 * Wraps a Fetch-API handler (Deno, Bun, Cloudflare-style `fetch(request)`, any runtime with
 * `Request`/`Response`): loads the session, runs the handler, saves, adds the Set-Cookie.
 *
 * @example
 * ```ts
 * import { withFetchSession } from '@scale/sessions/fetch'
 * export default { fetch: withFetchSession(sessions, async (request, session) => new Response(session.userId ?? 'anonymous')) }
 * ```
 */
export function withFetchSession<Data extends SessionData>(
  sessions: Sessions<Data>,
  handler: FetchSessionHandler<Data>,
): (request: Request) => Promise<Response> {
  return async (request) => {
    try {
      const session = await sessions.load({
        cookie: request.headers.get('cookie') ?? undefined,
        userAgent: request.headers.get('user-agent') ?? undefined,
      })
      attachSession(sessions, request, session)
      const response = await handler(request, session)
      const { setCookie } = await sessions.commit(session)
      return withSetCookie(response, setCookie)
    } catch (error) {
      return sessionErrorResponse(error)
    }
  }
}
