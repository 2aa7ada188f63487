import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { SessionCsrfError } from './errors.js'
import type { Session, SessionData } from './session.js'

/** The session field holding the synchronizer secret. */
const CSRF_FIELD = '_csrf'
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

function secretOf(session: Session<SessionData>): Buffer | undefined {
  const stored = session.get(CSRF_FIELD)
  if (typeof stored !== 'string') return undefined
  const secret = Buffer.from(stored, 'base64url')
  return secret.length === 32 ? secret : undefined
}

/**
 * The synchronizer token for a form or a header (OWASP's "synchronizer token pattern"): a secret
 * kept in the session (field `_csrf`, created on first use, so an anonymous session is stored
 * then), sent masked with a fresh random pad each time, so the token in a compressed page
 * changes on every response (BREACH) while every issued token stays valid for the session.
 *
 * @example
 * ```ts
 * res.send(`<input type="hidden" name="_csrf" value="${csrfToken(sessions.of(req))}">`)
 * ```
 */
export function csrfToken<Data extends SessionData>(session: Session<Data>): string {
  const any = session as unknown as Session<SessionData>
  let secret = secretOf(any)
  if (!secret) {
    secret = randomBytes(32)
    any.set(CSRF_FIELD, secret.toString('base64url'))
  }
  const pad = randomBytes(32)
  const masked = Buffer.alloc(32)
  for (let i = 0; i < 32; i++) masked[i] = (secret[i] as number) ^ (pad[i] as number)
  return `${pad.toString('base64url')}.${masked.toString('base64url')}`
}

/** Whether a token from {@link csrfToken} belongs to this session (constant time). */
export function verifyCsrfToken<Data extends SessionData>(
  session: Session<Data>,
  token: string | undefined,
): boolean {
  const secret = secretOf(session as unknown as Session<SessionData>)
  if (!secret || typeof token !== 'string' || token.length > 100) return false
  const [padText, maskedText] = token.split('.')
  if (padText === undefined || maskedText === undefined) return false
  const pad = Buffer.from(padText, 'base64url')
  const masked = Buffer.from(maskedText, 'base64url')
  if (pad.length !== 32 || masked.length !== 32) return false
  const unmasked = Buffer.alloc(32)
  for (let i = 0; i < 32; i++) unmasked[i] = (pad[i] as number) ^ (masked[i] as number)
  return timingSafeEqual(unmasked, secret)
}

/**
 * Throws {@link SessionCsrfError} (403) unless the request is safe (GET, HEAD, OPTIONS, TRACE)
 * or carries a valid token. The adapters' CSRF middlewares call this.
 */
export function assertCsrf<Data extends SessionData>(
  session: Session<Data>,
  method: string,
  token: string | undefined,
): void {
  if (SAFE_METHODS.has(method.toUpperCase())) return
  if (token === undefined || token === '') throw new SessionCsrfError('no token in the request')
  if (!verifyCsrfToken(session, token))
    throw new SessionCsrfError('the token does not belong to this session')
}

/**
 * The signed double-submit variant, for pages that must not write the session: the app sets this
 * value in a cookie readable by its JavaScript (not HttpOnly) and the client copies it into the
 * `x-csrf-token` header. It is bound to the session (an HMAC over the session's handle), so a
 * value planted by a sibling subdomain or an attacker's own session does not verify. Reissue it
 * after a login (the handle changes).
 */
export function doubleSubmitToken<Data extends SessionData>(secret: string, session: Session<Data>): string {
  const nonce = randomBytes(16).toString('base64url')
  return `${nonce}.${signNonce(secret, session.handle, nonce)}`
}

/** Whether the cookie and the header carry the same double-submit token, issued for this session. */
export function verifyDoubleSubmit<Data extends SessionData>(
  secret: string,
  session: Session<Data>,
  cookieValue: string | undefined,
  headerValue: string | undefined,
): boolean {
  if (typeof cookieValue !== 'string' || typeof headerValue !== 'string' || cookieValue.length > 200)
    return false
  const a = Buffer.from(cookieValue)
  const b = Buffer.from(headerValue)
  if (a.length !== b.length || !timingSafeEqual(a, b)) return false
  const [nonce, signature] = cookieValue.split('.')
  if (nonce === undefined || signature === undefined) return false
  const expected = Buffer.from(signNonce(secret, session.handle, nonce))
  const given = Buffer.from(signature)
  return expected.length === given.length && timingSafeEqual(expected, given)
}

function signNonce(secret: string, handle: string, nonce: string): string {
  return createHmac('sha256', secret).update(`${handle}.${nonce}`).digest('base64url')
}
