import { createHmac, timingSafeEqual } from 'node:crypto'
import { MalformedTokenError } from './errors.js'
import type { Lsn } from './lsn.js'

// Token layout: `1.<lsn as 16 hex digits>[.<signature>]`. Only cookie- and header-safe
// characters, so it can travel in a Set-Cookie value or an HTTP header unescaped.
const VERSION = '1'
const TOKEN = /^1\.([0-9a-f]{16})(?:\.([A-Za-z0-9_-]{22}))?$/
const MAX_TOKEN_LENGTH = 64

/** Serializes and verifies consistency tokens, optionally HMAC-signed. */
export class ConsistencyTokenCodec {
  readonly #secret: string | undefined

  constructor(secret: string | undefined) {
    this.#secret = secret
  }

  encode(lsn: Lsn): string {
    const body = `${VERSION}.${lsn.toString(16).padStart(16, '0')}`
    return this.#secret === undefined ? body : `${body}.${this.#sign(body)}`
  }

  /** Strict parse: throws {@link MalformedTokenError} on garbage, a bad signature or a missing one. */
  decode(token: string): Lsn {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH)
      throw new MalformedTokenError('not a token string')
    const match = TOKEN.exec(token)
    if (!match?.[1]) throw new MalformedTokenError('unknown format or version')
    const signature = match[2]
    if (this.#secret !== undefined) {
      if (signature === undefined) throw new MalformedTokenError('signature missing')
      const expected = Buffer.from(this.#sign(token.slice(0, token.lastIndexOf('.'))))
      const given = Buffer.from(signature)
      if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
        throw new MalformedTokenError('signature mismatch')
      }
    }
    return BigInt(`0x${match[1]}`)
  }

  #sign(body: string): string {
    // 128 bits of HMAC-SHA256 are plenty to stop forgery of a routing hint.
    return createHmac('sha256', this.#secret ?? '')
      .update(body)
      .digest('base64url')
      .slice(0, 22)
  }
}
