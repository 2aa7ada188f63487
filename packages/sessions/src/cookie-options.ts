import type { CookieAttributes } from './cookie-header.js'
import { SessionsOptionsError } from './errors.js'

/** Cookie options; the defaults follow the OWASP Session Management Cheat Sheet. */
export interface SessionCookieOptions {
  /**
   * Cookie name. `__Host-` is prepended when the cookie is `secure`, has `path: '/'` and no
   * `domain`, so the browser refuses it from a sibling subdomain or an insecure origin.
   * @default 'sid'
   */
  name?: string
  /** @default '/' */
  path?: string
  /** Set only to share the cookie with subdomains (disables `__Host-`). @default undefined */
  domain?: string
  /** @default true */
  httpOnly?: boolean
  /** Turn off only for plain-HTTP development. @default true */
  secure?: boolean
  /** @default 'Lax' */
  sameSite?: 'Strict' | 'Lax' | 'None'
  /** Prepend `__Host-` when the attributes allow it. @default true */
  hostPrefix?: boolean
}

/**
 * The cookie's name and attributes from the user's options: defaults filled in, values a
 * Set-Cookie header cannot carry refused with `SessionsOptionsError`, and `__Host-` prepended
 * when the attributes allow it.
 */
export function resolveCookieOptions(options: SessionCookieOptions | undefined): {
  cookieName: string
  cookie: CookieAttributes
} {
  const cookie = options ?? {}
  const path = cookie.path ?? '/'
  const secure = cookie.secure ?? true
  const sameSite = cookie.sameSite ?? 'Lax'
  if (sameSite === 'None' && !secure) {
    throw new SessionsOptionsError(
      'cookie.sameSite',
      'cookie.sameSite "None" requires cookie.secure (browsers drop it otherwise).',
    )
  }
  for (const [attribute, value] of [
    ['path', path],
    ['domain', cookie.domain],
  ] as const) {
    if (value !== undefined && !/^[\x21-\x3A\x3C-\x7E]+$/.test(value)) {
      throw new SessionsOptionsError(
        `cookie.${attribute}`,
        `cookie.${attribute} "${value}" contains characters a Set-Cookie attribute cannot hold.`,
      )
    }
  }
  const baseName = cookie.name ?? 'sid'
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(baseName)) {
    throw new SessionsOptionsError(
      'cookie.name',
      `cookie.name "${baseName}" is not a valid cookie name token.`,
    )
  }
  const hostPrefixAllowed = secure && path === '/' && cookie.domain === undefined
  const cookieName =
    (cookie.hostPrefix ?? true) && hostPrefixAllowed && !baseName.startsWith('__Host-')
      ? `__Host-${baseName}`
      : baseName
  return {
    cookieName,
    cookie: { path, domain: cookie.domain, httpOnly: cookie.httpOnly ?? true, secure, sameSite },
  }
}
