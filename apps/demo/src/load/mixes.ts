import type { Request } from 'autocannon'

/** A load mix: one virtual user's visit (a request sequence, repeated) and what it counted. */
export interface Mix {
  name: string
  requests: Request[]
  counts(): Record<string, number>
}

/** Per-visit state: autocannon starts each repetition of the sequence with a fresh context. */
interface Visit {
  userId?: number
  wroteVersion?: number
  token?: string | undefined
  vu?: LoggedInUser | undefined
}

const header = (headers: Record<string, unknown> | undefined, name: string): string | undefined => {
  const value = headers?.[name] ?? headers?.[name.toLowerCase()]
  return Array.isArray(value) ? String(value[0]) : value === undefined ? undefined : String(value)
}

/**
 * A user to read, with the skew of real traffic: log-uniform (Zipf with s = 1), so user k is read
 * about 1/k as often as user 1 and a few thousand popular profiles take most reads.
 */
export function popularUser(users: number): number {
  return Math.max(1, Math.min(users, Math.floor(users ** Math.random())))
}

/**
 * autocannon can pair a response with the wrong request after a connection dies mid-request (a
 * killed server): a check first makes sure the body is the answer it expects, else it is skipped.
 */
function parse(body: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body)
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

const READS_PER_VISIT = 8

/**
 * The read-heavy mix every stage gets: a visit changes the visitor's own profile, reads it back
 * (carrying the consistency token it got), then reads 8 random profiles. 10% writes.
 *
 * Counted against what was sent: a read-back whose row version is below the version the write
 * returned is a stale read (the user did not see their own change).
 */
export function profileMix(users: number): Mix {
  let nextVisitor = 0
  const counts = { writes: 0, readBacks: 0, staleReads: 0, reads: 0 }
  const visit = (context: object) => context as Visit
  const requests: Request[] = [
    {
      method: 'PATCH',
      path: '/users/1',
      headers: { 'content-type': 'application/json' },
      // A different visitor per visit, so no two concurrent visits write the same user.
      setupRequest(request, context) {
        const userId = 1 + (nextVisitor++ % users)
        visit(context).userId = userId
        return {
          ...request,
          path: `/users/${userId}`,
          body: JSON.stringify({ firstName: `Visitor${nextVisitor % 1000}` }),
        }
      },
      onResponse(status, body, context, headers) {
        counts.writes++
        if (status !== 200 || parse(body)?.id !== visit(context).userId) return
        visit(context).wroteVersion = Number(header(headers, 'x-user-version'))
        visit(context).token = header(headers, 'x-consistency')
      },
    },
    {
      method: 'GET',
      path: '/users/1',
      setupRequest(request, context) {
        const { userId, token } = visit(context)
        return {
          ...request,
          path: `/users/${userId ?? 1}`,
          headers: token ? { 'x-consistency': token } : {},
        }
      },
      onResponse(status, body, context, headers) {
        const { wroteVersion, userId } = visit(context)
        if (status !== 200 || wroteVersion === undefined || parse(body)?.id !== userId) return
        counts.readBacks++
        if (Number(header(headers, 'x-user-version')) < wroteVersion) counts.staleReads++
      },
    },
    ...Array.from(
      { length: READS_PER_VISIT },
      (): Request => ({
        method: 'GET',
        path: '/users/1',
        setupRequest: (request) => ({ ...request, path: `/users/${popularUser(users)}`, headers: {} }),
        onResponse(status) {
          if (status === 200) counts.reads++
        },
      }),
    ),
  ]
  return { name: 'profiles', requests, counts: () => ({ ...counts }) }
}

/** A user logged in before the load starts; the load sends its cookie on every request. */
export interface LoggedInUser {
  userId: number
  cookie: string
  /** Set once any response said this user was not (or no longer) logged in as itself. */
  loggedOut?: boolean
}

/**
 * Stage 7: every request of a visit carries a logged-in user's cookie. `GET /me` must answer that
 * user's ID on every response (any other answer, or 401 on the write, counts the user as logged
 * out); then an own-profile write and 3 random reads.
 */
export function loggedInMix(vus: LoggedInUser[], users: number): Mix {
  let next = 0
  const counts = { identityChecks: 0, wrongIdentity: 0, writes: 0, reads: 0 }
  const visit = (context: object) => context as Visit
  const withCookie = (context: object) => {
    const vu = visit(context).vu
    return vu ? { cookie: vu.cookie } : {}
  }
  const markLoggedOut = (context: object) => {
    const vu = visit(context).vu
    if (vu) vu.loggedOut = true
  }
  const requests: Request[] = [
    {
      method: 'GET',
      path: '/me',
      setupRequest(request, context) {
        const vu = vus[next++ % vus.length]
        visit(context).vu = vu
        return { ...request, headers: withCookie(context) }
      },
      onResponse(status, body, context) {
        if (status !== 200) return // 5xx during a drill: an error, counted as such, not a logout
        const me = parse(body)
        if (!me || !('userId' in me)) return // not the /me answer (see parse())
        counts.identityChecks++
        if (me.userId !== visit(context).vu?.userId) {
          counts.wrongIdentity++
          markLoggedOut(context)
        }
      },
    },
    {
      method: 'PATCH',
      path: '/users/1',
      setupRequest(request, context) {
        const vu = visit(context).vu
        return {
          ...request,
          path: `/users/${vu?.userId ?? 1}`,
          headers: { ...withCookie(context), 'content-type': 'application/json' },
          body: JSON.stringify({ lastName: `Seen${next % 1000}` }),
        }
      },
      onResponse(status, _body, context) {
        counts.writes++
        if (status === 401 || status === 403) markLoggedOut(context)
      },
    },
    ...Array.from(
      { length: 3 },
      (): Request => ({
        method: 'GET',
        path: '/users/1',
        setupRequest: (request, context) => ({
          ...request,
          path: `/users/${popularUser(users)}`,
          headers: withCookie(context),
        }),
        onResponse(status) {
          if (status === 200) counts.reads++
        },
      }),
    ),
  ]
  return {
    name: 'logged-in',
    requests,
    counts: () => ({ ...counts, users: vus.length, loggedOutUsers: vus.filter((vu) => vu.loggedOut).length }),
  }
}

/**
 * Stage 6: what a browser fetches for profile pages: the stylesheet and photos (skewed: a few
 * photos are popular), through the edge. `X-Cache: HIT` counts an edge hit.
 */
export function assetMix(cssUrl: string, photos: number): Mix {
  const counts = { assetRequests: 0, edgeHits: 0 }
  const onResponse = (
    status: number,
    _body: string,
    _context: object,
    headers: Record<string, unknown> | undefined,
  ) => {
    if (status !== 200) return
    counts.assetRequests++
    if (header(headers, 'X-Cache') === 'HIT' || header(headers, 'x-cache') === 'HIT') counts.edgeHits++
  }
  const requests: Request[] = [
    { method: 'GET', path: cssUrl, setupRequest: (request) => request, onResponse },
    ...Array.from(
      { length: 5 },
      (): Request => ({
        method: 'GET',
        path: '/photos/1.svg',
        setupRequest: (request) => ({ ...request, path: `/photos/${popularUser(photos)}.svg` }),
        onResponse,
      }),
    ),
  ]
  return { name: 'assets', requests, counts: () => ({ ...counts }) }
}
