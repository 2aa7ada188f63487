/** Longest Cookie header we look into; browsers cap at ~8 KB per cookie, proxies at ~16 KB. */
const MAX_COOKIE_HEADER = 16_384

/** Most same-named cookies looked at: browsers send one per matching path/domain, rarely more. */
const MAX_DUPLICATES = 4

/**
 * The values of cookie `name` in a `Cookie` request header, in header order (RFC 6265 §5.4:
 * longest path first), at most 4. Only this one name is looked at (no full parse into an object,
 * so no prototype pollution via names like `__proto__`). Duplicates happen when a sibling
 * subdomain or another path sets the same name; the caller picks the one that verifies.
 */
export function readCookies(header: string | undefined, name: string): string[] {
  const values: string[] = []
  if (!header || header.length > MAX_COOKIE_HEADER) return values
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1) continue
    if (part.slice(0, eq).trim() !== name) continue
    let value = part.slice(eq + 1).trim()
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    values.push(value)
    if (values.length === MAX_DUPLICATES) break
  }
  return values
}

export interface CookieAttributes {
  readonly path: string
  readonly domain: string | undefined
  readonly httpOnly: boolean
  readonly secure: boolean
  readonly sameSite: 'Strict' | 'Lax' | 'None'
}

/**
 * A `Set-Cookie` header value. `maxAgeSeconds` 0 deletes the cookie. Max-Age is rounded up: the
 * cookie may outlive the session by under a second (the server then finds nothing), but never
 * ends before it.
 */
export function serializeSetCookie(
  name: string,
  value: string,
  maxAgeSeconds: number | undefined,
  attributes: CookieAttributes,
): string {
  let header = `${name}=${value}; Path=${attributes.path}`
  if (attributes.domain) header += `; Domain=${attributes.domain}`
  // No Max-Age: a browser-session cookie, gone when the browser closes ("remember me" off).
  if (maxAgeSeconds === undefined) return withFlags(header, attributes)
  header += `; Max-Age=${Math.max(0, Math.ceil(maxAgeSeconds))}`
  if (maxAgeSeconds <= 0) header += '; Expires=Thu, 01 Jan 1970 00:00:00 GMT'
  return withFlags(header, attributes)
}

function withFlags(header: string, attributes: CookieAttributes): string {
  let flagged = header
  if (attributes.httpOnly) flagged += '; HttpOnly'
  if (attributes.secure) flagged += '; Secure'
  return `${flagged}; SameSite=${attributes.sameSite}`
}
