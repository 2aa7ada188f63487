import type { Request } from 'autocannon'
import { SEED_PASSWORD, seedUsername } from '../app/seed-data.js'
import type { LoggedInUser, Mix } from '../load/mixes.js'

/** A logged-in user of one region: logged in through the geo router with its region's header. */
export interface RegionalUser extends LoggedInUser {
  region: string
}

/** Logs `count` users in; the first `share` of them live in `regions[0]`, the rest in `regions[1]`. */
export async function logInRegionalUsers(
  url: string,
  count: number,
  users: number,
  regions: [string, string],
  share: number,
): Promise<RegionalUser[]> {
  const loggedIn: RegionalUser[] = []
  for (let i = 0; i < count; i++) {
    const userId = 1 + Math.floor((i * users) / count)
    const region = i < Math.round(count * share) ? regions[0] : regions[1]
    const response = await fetch(`${url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-region': region },
      body: JSON.stringify({ username: seedUsername(userId), password: SEED_PASSWORD }),
    })
    const setCookie = response.headers.get('set-cookie')
    if (response.status !== 200 || !setCookie)
      throw new Error(`login of ${seedUsername(userId)} failed: ${response.status} ${await response.text()}`)
    loggedIn.push({ userId, region, cookie: setCookie.split(';')[0] as string })
  }
  return loggedIn
}

const header = (headers: Record<string, unknown> | undefined, name: string): string | undefined => {
  const value = headers?.[name]
  return Array.isArray(value) ? String(value[0]) : value === undefined ? undefined : String(value)
}

/**
 * Sends each request of `mix` with its user's `x-region` header and counts, per client region,
 * which region answered (`x-served-region` from the geo router): `a->a`, `b->a`, …
 */
export function regionalMix(
  mix: Mix,
  vus: RegionalUser[],
): { mix: Mix; served: Record<string, number>; firstServedAt: Record<string, number> } {
  const regionOf = new Map(vus.map((vu) => [vu.userId, vu.region]))
  const served: Record<string, number> = {}
  /** Wall-clock time of the first answer per route, e.g. when `b->a` began (the failover). */
  const firstServedAt: Record<string, number> = {}
  const regionOfContext = (context: object) => {
    const vu = (context as { vu?: LoggedInUser }).vu
    return vu ? regionOf.get(vu.userId) : undefined
  }
  const requests: Request[] = mix.requests.map((request) => ({
    ...request,
    setupRequest(req, context) {
      const next = typeof request.setupRequest === 'function' ? request.setupRequest(req, context) : req
      const region = regionOfContext(context)
      return next && region ? { ...next, headers: { ...next.headers, 'x-region': region } } : next
    },
    onResponse(status, body, context, headers) {
      const from = regionOfContext(context)
      const to = header(headers, 'x-served-region')
      if (from && to) {
        const route = `${from}->${to}`
        served[route] = (served[route] ?? 0) + 1
        firstServedAt[route] ??= Date.now()
      }
      if (typeof request.onResponse === 'function') request.onResponse(status, body, context, headers)
    },
  }))
  return { mix: { ...mix, requests }, served, firstServedAt }
}
