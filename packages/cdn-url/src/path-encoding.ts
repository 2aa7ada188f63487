import { InvalidPathError, PathTraversalError } from './errors.js'

/**
 * One canonical encoding, so that what is signed is exactly what a server sees after decoding.
 * Every character but RFC 3986's unreserved set (A-Z a-z 0-9 - . _ ~) is percent-encoded as
 * UTF-8, including `+` (some servers decode it as a space), `!'()*` (which encodeURIComponent
 * leaves alone) and, in a query, the space (never `+`). Decoding is therefore unambiguous, and
 * a decoded path or query re-encodes to the very same bytes.
 */
const UNRESERVED_ONLY = /^[A-Za-z0-9._~-]*$/

export function encodeComponent(value: string, what = value): string {
  if (UNRESERVED_ONLY.test(value)) return value // the common case, without the encoder
  try {
    return encodeURIComponent(value).replace(
      /[!'()*]/g,
      (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
    )
  } catch (cause) {
    // A lone UTF-16 surrogate has no UTF-8 form.
    throw Object.assign(new InvalidPathError(what, 'is not well-formed Unicode (a lone surrogate)'), {
      cause,
    })
  }
}

function decodeComponent(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw)
  } catch (cause) {
    throw Object.assign(new InvalidPathError(what, 'has malformed percent-encoding'), { cause })
  }
}

/**
 * Refuses a decoded path that could leave its root or confuse a file system: `.` and `..`
 * segments, backslashes (a separator on Windows, and WHATWG URLs turn `\` into `/`) and NUL.
 */
export function assertSafePath(decoded: string, raw = decoded): void {
  if (!UNSAFE.test(decoded)) return // one regex for the common case; the loop names the reason
  if (decoded.includes('\0')) throw new PathTraversalError(raw, 'contains NUL')
  if (decoded.includes('\\')) throw new PathTraversalError(raw, 'contains a backslash')
  for (const segment of decoded.split('/')) {
    if (segment === '..' || segment === '.')
      throw new PathTraversalError(raw, `contains a "${segment}" segment`)
  }
}

const UNSAFE = /\0|\\|(^|\/)\.\.?(\/|$)/
const UNRESERVED_PATH = /^[A-Za-z0-9._~/-]*$/

/** Encodes a decoded absolute path (`/img/a b.png`) segment by segment: `/img/a%20b.png`. */
export function encodePath(decoded: string): string {
  assertSafePath(decoded)
  if (UNRESERVED_PATH.test(decoded)) return decoded
  return decoded
    .split('/')
    .map((segment) => encodeComponent(segment, decoded))
    .join('/')
}

/** Decodes the path of a request target as a server sees it, and refuses traversal in any encoding. */
export function decodePath(raw: string): string {
  const decoded = raw
    .split('/')
    .map((segment) => decodeComponent(segment, raw))
    .join('/')
  assertSafePath(decoded, raw)
  return decoded
}

export type QueryPair = readonly [key: string, value: string]

/** Splits a raw query (`a=1&b=x%20y`, no `?`) into decoded pairs; `+` means space, as in forms. */
export function parseQuery(raw: string): QueryPair[] {
  if (raw === '') return []
  return raw.split('&').map((part) => {
    const equals = part.indexOf('=')
    const key = equals === -1 ? part : part.slice(0, equals)
    const value = equals === -1 ? '' : part.slice(equals + 1)
    return [
      decodeComponent(key.replaceAll('+', ' '), raw),
      decodeComponent(value.replaceAll('+', ' '), raw),
    ] as const
  })
}

/** Encodes pairs in their order: `a=1&b=x%20y`. */
export function formatQuery(pairs: readonly QueryPair[]): string {
  return pairs.map(([key, value]) => `${encodeComponent(key)}=${encodeComponent(value)}`).join('&')
}

/** The order-independent form that is signed: pairs sorted by key, then value (UTF-16 code units). */
export function canonicalQuery(pairs: readonly QueryPair[]): string {
  const sorted = [...pairs].sort(([ak, av], [bk, bv]) =>
    ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0,
  )
  return formatQuery(sorted)
}

/** Splits a request target or absolute URL into its raw path and raw query, without normalizing either. */
export function splitTarget(target: string): { rawPath: string; rawQuery: string } {
  // An absolute URL: drop scheme and authority by hand; the WHATWG parser would resolve `..`.
  const withoutOrigin = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '')
  const withoutFragment = withoutOrigin.split('#', 1)[0] as string
  const question = withoutFragment.indexOf('?')
  return question === -1
    ? { rawPath: withoutFragment || '/', rawQuery: '' }
    : { rawPath: withoutFragment.slice(0, question) || '/', rawQuery: withoutFragment.slice(question + 1) }
}
