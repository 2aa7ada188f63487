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

/** Answers per route (`a->a`, `b->a`, …) in one time slice: the "who served whom" chart of stage 8. */
export interface RegionSlice {
  /** Start of the slice, ms since the phase began. */
  t: number
  served: Record<string, number>
}

const SLICE_MS = 250

export interface RegionalMix {
  mix: Mix
  /** Answers per route over the whole phase. */
  served: Record<string, number>
  /** Wall-clock time of the first answer per route, e.g. when `b->a` began. */
  firstServedAt: Record<string, number>
  /** Wall-clock time of the first 2xx/3xx answer per route (a failover is over when these arrive). */
  firstOkAt: Record<string, number>
  /** Answers per route per 250 ms, from `start`. */
  slices(): RegionSlice[]
}

/**
 * Sends each request of `mix` with its user's `x-region` header and counts, per client region,
 * which region answered (`x-served-region` from the geo router): `a->a`, `b->a`, …
 */
export function regionalMix(mix: Mix, vus: RegionalUser[], start = Date.now()): RegionalMix {
  const regionOf = new Map(vus.map((vu) => [vu.userId, vu.region]))
  const served: Record<string, number> = {}
  const firstServedAt: Record<string, number> = {}
  const firstOkAt: Record<string, number> = {}
  const slices: Record<string, number>[] = []
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
        const now = Date.now()
        served[route] = (served[route] ?? 0) + 1
        firstServedAt[route] ??= now
        if (status < 400) firstOkAt[route] ??= now
        const index = Math.max(0, Math.floor((now - start) / SLICE_MS))
        while (slices.length <= index) slices.push({})
        const slice = slices[index] as Record<string, number>
        slice[route] = (slice[route] ?? 0) + 1
      }
      if (typeof request.onResponse === 'function') request.onResponse(status, body, context, headers)
    },
  }))
  return {
    mix: { ...mix, requests },
    served,
    firstServedAt,
    firstOkAt,
    slices: () => slices.map((slice, i) => ({ t: i * SLICE_MS, served: { ...slice } })),
  }
}
