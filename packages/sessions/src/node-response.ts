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

/** Per-response state of the hooks below, kept on the response under a symbol. */
interface ResponseCommit {
  readonly sessions: Sessions<SessionData>
  readonly session: Session<SessionData>
  readonly hooks: CommitHooks | undefined
  readonly writeHead: ServerResponse['writeHead']
  readonly end: ServerResponse['end']
  headersHooked: boolean
  ending: boolean
  args: unknown[] | undefined
}

const COMMIT = Symbol('@scale/sessions response commit')
type WithCommit = ServerResponse & { [COMMIT]: ResponseCommit }

// The wrappers are module-level functions reading their state from the response, not closures
// made per request: a response costs one small state object instead of four closures (the
// session layer's CPU per request is dominated by such allocations once Redis is batched).
function writeHeadWithCookie(this: WithCommit, statusCode: number, ...args: HeaderArgs): ServerResponse {
  const commit = this[COMMIT]
  let headerArgs = args
  if (!commit.headersHooked && !this.headersSent) {
    commit.headersHooked = true
    try {
      commit.hooks?.beforeSave()
    } catch {
      // A field that cannot be stored fails the save at the end of the response, where the
      // error is handled; throwing from inside writeHead would break the app's stream instead.
    }
    const setCookie = commit.sessions.cookieForHeaders(commit.session)
    if (setCookie) headerArgs = withSetCookie(this, args, setCookie)
  }
  return (commit.writeHead as (...a: unknown[]) => ServerResponse).call(this, statusCode, ...headerArgs)
}

function endAfterCommit(this: WithCommit, ...args: unknown[]): ServerResponse {
  const commit = this[COMMIT]
  if (commit.ending) return this
  commit.ending = true
  commit.args = args
  let committing: Promise<unknown>
  try {
    commit.hooks?.beforeSave()
    committing = commit.sessions.commit(commit.session)
  } catch (error) {
    committing = Promise.reject(error)
  }
  committing.then(endNow.bind(this), saveFailed.bind(this))
  return this
}

function endNow(this: WithCommit): void {
  const commit = this[COMMIT]
  ;(commit.end as (...a: unknown[]) => ServerResponse).apply(this, commit.args as unknown[])
}

function saveFailed(this: WithCommit, error: unknown): void {
  const commit = this[COMMIT]
  // The error response must not carry a cookie for the session that failed to save, and it
  // ends through the original `end`.
  commit.headersHooked = true
  ;(this as ServerResponse).end = commit.end
  if (commit.hooks) commit.hooks.onSaveError(error, this)
  else sendError(this, error, commit.end)
}

/**
 * For an adapter that saves the session itself before the response is written (Fastify's
 * `onSend`): `end` goes back to the response's own, and after a failed save the `writeHead`
 * hook adds no cookie to the error response. After a successful save the hook still adds the
 * cookie the save calls for.
 */
export function savedByAdapter(res: ServerResponse, saved: boolean): void {
  const commit = (res as Partial<WithCommit>)[COMMIT]
  if (commit === undefined) return
  res.end = commit.end
  if (!saved) commit.headersHooked = true
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
): void {
  const commit: ResponseCommit = {
    sessions: sessions as unknown as Sessions<SessionData>,
    session: session as unknown as Session<SessionData>,
    hooks,
    writeHead: res.writeHead,
    end: res.end,
    headersHooked: false,
    ending: false,
    args: undefined,
  }
  ;(res as WithCommit)[COMMIT] = commit
  res.writeHead = writeHeadWithCookie as ServerResponse['writeHead']
  res.end = endAfterCommit as ServerResponse['end']
}
