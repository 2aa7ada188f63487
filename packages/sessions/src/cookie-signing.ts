import { createHmac, timingSafeEqual } from 'node:crypto'

/** What a cookie carries once its signature checked out. */
export interface VerifiedCookie {
  readonly tag: string
  readonly sessionId: string
  /** Index of the secret that verified it; > 0 means it must be re-signed with the newest. */
  readonly secretIndex: number
}

// tag . id . signature, all base64url. The shape is checked before any HMAC is computed, so
// garbage and oversized cookies cost a regex test and nothing else.
const COOKIE_SHAPE = /^([A-Za-z0-9_-]{6})\.([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})$/

function signatureOf(secret: Buffer, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload).digest()
}

/** `tag.id.hmac` signed with the newest secret. */
export function signCookieValue(secrets: readonly Buffer[], tag: string, sessionId: string): string {
  const payload = `${tag}.${sessionId}`
  return `${payload}.${signatureOf(secrets[0] as Buffer, payload).toString('base64url')}`
}

/**
 * Verifies against every configured secret, newest first, in constant time per comparison, so
 * rotating a secret in (prepend) never logs anybody out and removing the oldest one retires it.
 * Returns `undefined` for anything malformed, truncated, tampered or signed with an unknown key.
 */
export function verifyCookieValue(secrets: readonly Buffer[], value: string): VerifiedCookie | undefined {
  const match = COOKIE_SHAPE.exec(value)
  if (!match) return undefined
  const tag = match[1] as string
  const sessionId = match[2] as string
  const signature = match[3] as string
  const given = Buffer.from(signature, 'base64url')
  // base64url's last character carries 2 padding bits; insisting on the canonical form means a
  // cookie with a flipped padding bit is rejected instead of verifying as the same signature.
  if (given.length !== 32 || given.toString('base64url') !== signature) return undefined
  const payload = `${tag}.${sessionId}`
  for (let index = 0; index < secrets.length; index++) {
    if (timingSafeEqual(given, signatureOf(secrets[index] as Buffer, payload))) {
      return { tag, sessionId, secretIndex: index }
    }
  }
  return undefined
}
