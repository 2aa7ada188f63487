import { serializeSetCookie } from './cookie-header.js'
import { signCookieValue } from './cookie-signing.js'
import type { ResolvedOptions } from './options.js'
import type { SessionState } from './session.js'
import { hasData } from './session-writer.js'

type CookieOptions = Pick<ResolvedOptions, 'cookieName' | 'secrets' | 'cookie'>

/** The signed cookie naming this session, with Max-Age only for a persistent session. */
function sessionCookie(options: CookieOptions, state: SessionState): string {
  return serializeSetCookie(
    options.cookieName,
    signCookieValue(options.secrets, state.location.tag, state.sessionId),
    state.persistent ? (state.expiresAt - Date.now()) / 1000 : undefined,
    options.cookie,
  )
}

/** The Set-Cookie header a session's state calls for at the end of a request, if any. */
export function setCookieFor(options: CookieOptions, state: SessionState): string | undefined {
  // The header hook already sent what could be sent.
  if (state.headersSentFor) return undefined
  if (state.sendCookie || (state.needsResign && !state.isNew && !state.clearCookie)) {
    return sessionCookie(options, state)
  }
  if (state.clearCookie) return serializeSetCookie(options.cookieName, '', 0, options.cookie)
  return undefined
}

/**
 * The Set-Cookie header to send with headers that leave before the session is saved, decided
 * from what the session will store; records what was sent so the save stays consistent with it.
 */
export function setCookieForEarlyHeaders(options: CookieOptions, state: SessionState): string | undefined {
  if (state.committed) return setCookieFor(options, state)
  if (state.headersSentFor) return undefined
  const creates = state.isNew && !state.readOnly && (state.userId !== undefined || hasData(state))
  state.headersSentFor = { sessionId: state.sessionId, issued: creates }
  return creates ? sessionCookie(options, state) : setCookieFor(options, state)
}
