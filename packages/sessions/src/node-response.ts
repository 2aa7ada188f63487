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

type HeaderArgs = [statusMessage?: unknown, headers?: unknown]

/**
 * Adds the Set-Cookie to a `writeHead` call. Headers given to `writeHead` replace same-named
 * headers set before (Node's rule), so our cookie joins the app's own Set-Cookie entries there
 * when it passes any, and is appended to the response's headers otherwise.
 */
function withSetCookie(res: ServerResponse, args: HeaderArgs, setCookie: string): HeaderArgs {
  const index = typeof args[0] === 'string' ? 1 : 0
  const headers = args[index]
  if (Array.isArray(headers)) {
    const flat = headers.flat() as unknown[]
    const hasOwn = flat.some((value, i) => i % 2 === 0 && String(value).toLowerCase() === 'set-cookie')
    if (hasOwn) {
      const copy = [...args] as HeaderArgs
      copy[index] = [...flat, 'set-cookie', setCookie]
      return copy
    }
  } else if (headers !== null && typeof headers === 'object') {
    const name = Object.keys(headers).find((key) => key.toLowerCase() === 'set-cookie')
    if (name !== undefined) {
      const own = (headers as Record<string, unknown>)[name]
      const copy = [...args] as HeaderArgs
      copy[index] = { ...headers, [name]: [...(Array.isArray(own) ? own : [own]), setCookie] }
      return copy
    }
  }
  res.appendHeader('set-cookie', setCookie)
  return args
}

/** What an adapter adds to {@link commitBeforeEnd}. */
export interface CommitHooks {
  /** Runs before the session's state is read for the headers or the save (Express's `req.session` sync). */
  beforeSave(): void
  /** A failed save, once the response's own `end` is back in place. */
  onSaveError(error: unknown, res: ServerResponse): void
}

/**
 * One response's session hooks: `res.writeHead` and `res.end` are replaced by methods of this
 * object bound to it, and nothing else is added to the response. Methods rather than closures
 * made per request: a response costs this object and two bound functions.
 */
class ResponseCommit<Data extends SessionData> implements ResponseHooks {
  readonly #sessions: Sessions<Data>
  readonly #session: Session<Data>
  readonly #res: ServerResponse
  readonly #hooks: CommitHooks | undefined
  readonly #writeHead: ServerResponse['writeHead']
  readonly #end: ServerResponse['end']
  #headersHooked = false
  #ending = false
  #args: unknown[] = []

  constructor(sessions: Sessions<Data>, session: Session<Data>, res: ServerResponse, hooks?: CommitHooks) {
    this.#sessions = sessions
    this.#session = session
    this.#res = res
    this.#hooks = hooks
    this.#writeHead = res.writeHead
    this.#end = res.end
    res.writeHead = this.#writeHeadWithCookie.bind(this) as ServerResponse['writeHead']
    res.end = this.#endAfterCommit.bind(this) as ServerResponse['end']
  }

  savedByAdapter(saved: boolean): void {
    this.#res.end = this.#end
    if (!saved) this.#headersHooked = true
  }

  #writeHeadWithCookie(statusCode: number, ...args: HeaderArgs): ServerResponse {
    const res = this.#res
    let headerArgs = args
    if (!this.#headersHooked && !res.headersSent) {
      this.#headersHooked = true
      try {
        this.#hooks?.beforeSave()
      } catch {
        // A field that cannot be stored fails the save at the end of the response, where the
        // error is handled; throwing from inside writeHead would break the app's stream instead.
      }
      const setCookie = this.#sessions.cookieForHeaders(this.#session)
      if (setCookie) headerArgs = withSetCookie(res, args, setCookie)
    }
    return (this.#writeHead as (...a: unknown[]) => ServerResponse).call(res, statusCode, ...headerArgs)
  }

  #endAfterCommit(...args: unknown[]): ServerResponse {
    const res = this.#res
    if (this.#ending) return res
    this.#ending = true
    this.#args = args
    let committing: Promise<unknown>
    try {
      this.#hooks?.beforeSave()
      committing = this.#sessions.commit(this.#session)
    } catch (error) {
      committing = Promise.reject(error)
    }
    committing.then(
      () => (this.#end as (...a: unknown[]) => ServerResponse).apply(res, this.#args),
      (error: unknown) => this.#saveFailed(error),
    )
    return res
  }

  #saveFailed(error: unknown): void {
    const res = this.#res
    // The error response must not carry a cookie for the session that failed to save, and it
    // ends through the original `end`.
    this.#headersHooked = true
    res.end = this.#end
    if (this.#hooks) this.#hooks.onSaveError(error, res)
    else sendError(res, error, this.#end)
  }
}

/** What {@link commitBeforeEnd} returns, for an adapter that saves the session itself. */
export interface ResponseHooks {
  /**
   * For an adapter that saves the session before the response is written (Fastify's `onSend`):
   * `end` goes back to the response's own, and after a failed save (`saved` false) the
   * `writeHead` hook adds no cookie to the error response. After a successful save the hook
   * still adds the cookie the save calls for.
   */
  savedByAdapter(saved: boolean): void
}

/**
 * Ties the session to the response, the way express-session's `on-headers` does, so the cookie
 * reaches the client whichever way the app answers:
 * - `res.writeHead` is wrapped: every path that sends headers goes through it (`write`, `end`,
 *   `flushHeaders`, `pipe`, Express's `sendFile`/`json`/`redirect`), and it adds the Set-Cookie
 *   the session calls for at that moment (`sessions.cookieForHeaders`).
 * - `res.end` is wrapped: the session is saved first and the response ends only once the write
 *   is in Redis, so the client's next request, on any server, reads what this one wrote. When
 *   the headers have not left yet, a failed save turns the response into the error response
 *   (503 for a Redis outage); when a streamed response already sent them, the connection is
 *   destroyed rather than ended as if the save had worked.
 */
export function commitBeforeEnd<Data extends SessionData>(
  sessions: Sessions<Data>,
  session: Session<Data>,
  res: ServerResponse,
  hooks?: CommitHooks,
): ResponseHooks {
  return new ResponseCommit(sessions, session, res, hooks)
}
