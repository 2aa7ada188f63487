import { createHmac, timingSafeEqual } from 'node:crypto'
import {
  CdnOptionsError,
  SignatureExpiredError,
  SignatureInvalidError,
  SignatureMissingError,
  SigningKeyUnknownError,
} from './errors.js'
import {
  canonicalQuery,
  decodePath,
  encodeComponent,
  parseQuery,
  type QueryPair,
  splitTarget,
} from './path-encoding.js'

/** One HMAC key. Keys are listed newest first: the first signs, all of them verify. */
export interface SigningKey {
  /** Goes into the URL (`kid=`), so a verifier knows which key to use: 1-32 of `A-Z a-z 0-9 _ -`. */
  id: string
  /** At least 32 bytes of secret. */
  secret: string | Uint8Array
}

/** What a verified URL carried. */
export interface VerifiedUrl {
  /** The decoded path that was signed, as the server sees it (`/img/a b.png`). */
  path: string
  /** The decoded query parameters other than the signature's, in URL order. */
  query: QueryPair[]
  keyId: string
  expiresAt: Date
}

/** The latest expiry `verify()` reads: `exp` has at most 12 digits (seconds; the year 33658). */
const MAX_EXPIRY_MS = 999_999_999_999 * 1000

/**
 * When a URL signed now expires, from `url()`'s `sign` option. Refuses what would issue a URL that
 * can never verify (already expired, an invalid Date, beyond what `verify()` reads) with
 * {@link CdnOptionsError} naming the option.
 */
export function expiryOf(
  sign: { expiresInMs?: number; expiresAt?: Date },
  defaultExpiresInMs: number,
  now = Date.now(),
): Date {
  if (sign.expiresAt !== undefined) {
    const at = sign.expiresAt
    if (!(at instanceof Date) || Number.isNaN(at.getTime()))
      throw new CdnOptionsError('sign.expiresAt', 'is not a valid Date')
    if (at.getTime() <= now)
      throw new CdnOptionsError(
        'sign.expiresAt',
        'is not in the future: the URL would be expired when issued',
      )
    if (at.getTime() > MAX_EXPIRY_MS)
      throw new CdnOptionsError('sign.expiresAt', 'is after the year 33658, the latest expiry verify() reads')
    return at
  }
  const option = sign.expiresInMs === undefined ? 'signing.defaultExpiresInMs' : 'sign.expiresInMs'
  const lifetime = sign.expiresInMs ?? defaultExpiresInMs
  if (!(lifetime > 0 && now + lifetime <= MAX_EXPIRY_MS))
    throw new CdnOptionsError(option, 'must be a positive number of ms, ending before the year 33658')
  return new Date(now + lifetime)
}

/**
 * The one spelling `url()` gives a decoded path: every segment canonically encoded, except the
 * options segment of Cloudflare's `/cdn-cgi/image/<options>/`, which url() writes as is (a segment
 * that looks like one may be either). Any other spelling of the same bytes is refused, so one
 * signed URL cannot be respelled into new cache keys (`%72eport`, `%c3%a9`, `%2F`, `//`).
 */
function isCanonicalPath(rawPath: string, path: string): boolean {
  const raw = rawPath.split('/')
  const decoded = path.split('/')
  if (raw.length !== decoded.length) return false // an encoded slash
  return decoded.every((segment, i) => {
    if (raw[i] === encodeComponent(segment)) return true
    return decoded[i - 2] === 'cdn-cgi' && decoded[i - 1] === 'image' && raw[i] === segment
  })
}

/** The query as url() writes it: `key=value` pairs, each part canonically encoded (a space is `%20`, never `+`). */
function isCanonicalQuery(rawQuery: string, pairs: readonly QueryPair[]): boolean {
  if (rawQuery === '') return pairs.length === 0
  const raw = rawQuery.split('&')
  return (
    raw.length === pairs.length &&
    pairs.every(([key, value], i) => raw[i] === `${encodeComponent(key)}=${encodeComponent(value)}`)
  )
}

export const SIGNATURE_PARAMS = { expires: 'exp', keyId: 'kid', signature: 'sig' } as const
const SIGNATURE_PARAM_NAMES = new Set<string>(Object.values(SIGNATURE_PARAMS))

/**
 * What is signed: a version tag, the key id, the expiry, the decoded path and the canonical query.
 * Newline-separated; none of the first three can contain one, and the path and query are last
 * in a fixed order, so no two different URLs give the same message.
 */
function message(keyId: string, expires: string, path: string, query: readonly QueryPair[]): string {
  return `cdn-url-v1\n${keyId}\n${expires}\n${path}\n${canonicalQuery(query)}`
}

/** HMAC-SHA256 signer and verifier of expiring URLs, with key rotation by key id. */
export class UrlSigner {
  readonly #keys: Map<string, Buffer>
  readonly #current: string

  constructor(keys: readonly SigningKey[]) {
    if (keys.length === 0) throw new CdnOptionsError('signing.keys', 'needs at least one key')
    this.#keys = new Map()
    for (const key of keys) {
      if (!/^[A-Za-z0-9_-]{1,32}$/.test(key.id)) {
        throw new CdnOptionsError('signing.keys', `key id "${key.id}" must be 1-32 of A-Z a-z 0-9 _ -`)
      }
      const secret =
        typeof key.secret === 'string' ? Buffer.from(key.secret, 'utf8') : Buffer.from(key.secret)
      if (secret.length < 32)
        throw new CdnOptionsError('signing.keys', `key "${key.id}" needs a secret of ≥ 32 bytes`)
      if (this.#keys.has(key.id))
        throw new CdnOptionsError('signing.keys', `key id "${key.id}" is listed twice`)
      this.#keys.set(key.id, secret)
    }
    this.#current = (keys[0] as SigningKey).id
  }

  #mac(keyId: string, expires: string, path: string, query: readonly QueryPair[]): Buffer {
    return createHmac('sha256', this.#keys.get(keyId) as Buffer)
      .update(message(keyId, expires, path, query))
      .digest()
  }

  /** The three parameters to append to a URL whose decoded path is `path` and whose other parameters are `query`. */
  sign(path: string, query: readonly QueryPair[], expiresAt: Date, keyId = this.#current): QueryPair[] {
    if (!this.#keys.has(keyId)) throw new SigningKeyUnknownError(keyId)
    for (const [key] of query) {
      if (SIGNATURE_PARAM_NAMES.has(key))
        throw new SignatureInvalidError(path, `query parameter "${key}" is reserved`)
    }
    // Rounded up: a URL lives at least as long as asked (rounding down cut up to 999 ms off it,
    // and a lifetime under a second was expired when issued).
    const expires = String(Math.ceil(expiresAt.getTime() / 1000))
    return [
      [SIGNATURE_PARAMS.expires, expires],
      [SIGNATURE_PARAMS.keyId, keyId],
      [SIGNATURE_PARAMS.signature, this.#mac(keyId, expires, path, query).toString('base64url')],
    ]
  }

  /**
   * Verifies a request target (`req.url`: raw path and query, exactly as received) or an absolute
   * URL. Throws {@link SignatureMissingError}, {@link SignatureInvalidError},
   * {@link SigningKeyUnknownError}, {@link SignatureExpiredError}, or a path error.
   */
  verify(target: string, now = Date.now()): VerifiedUrl {
    const { rawPath, rawQuery } = splitTarget(target)
    const path = decodePath(rawPath)
    const all = parseQuery(rawQuery)
    const query = all.filter(([key]) => !SIGNATURE_PARAM_NAMES.has(key))
    const found = (name: string) => all.filter(([key]) => key === name).map(([, value]) => value)
    const [expires, keyIds, signatures] = [
      found(SIGNATURE_PARAMS.expires),
      found(SIGNATURE_PARAMS.keyId),
      found(SIGNATURE_PARAMS.signature),
    ]
    if (expires.length + keyIds.length + signatures.length === 0) throw new SignatureMissingError(path)
    if (expires.length !== 1 || keyIds.length !== 1 || signatures.length !== 1) {
      throw new SignatureInvalidError(path, 'needs exactly one exp, kid and sig parameter')
    }
    const [expiry, keyId, signature] = [expires[0] as string, keyIds[0] as string, signatures[0] as string]
    if (!this.#keys.has(keyId)) throw new SigningKeyUnknownError(keyId)
    if (!/^\d{1,12}$/.test(expiry)) throw new SignatureInvalidError(path, 'exp is not a Unix time in seconds')
    const given = Buffer.from(signature, 'base64url')
    const expected = this.#mac(keyId, expiry, path, query)
    // Round-trip check: base64url decoding ignores junk, so "abc!" must not pass as "abc".
    if (
      given.length !== expected.length ||
      given.toString('base64url') !== signature ||
      !timingSafeEqual(given, expected)
    ) {
      throw new SignatureInvalidError(path, 'does not match the path, query, expiry and key id')
    }
    // After the MAC, so that a forged URL learns nothing from which check refused it.
    if (!isCanonicalPath(rawPath, path) || !isCanonicalQuery(rawQuery, all)) {
      throw new SignatureInvalidError(path, 'is spelled in another encoding than the one it was signed in')
    }
    const expiresAt = new Date(Number(expiry) * 1000)
    if (now >= expiresAt.getTime()) throw new SignatureExpiredError(path, expiresAt)
    return { path, query, keyId, expiresAt }
  }
}
