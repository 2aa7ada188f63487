import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { type LoggedInUser, loggedInMix, profileMix } from '../src/load/mixes.js'
import { runLoad } from '../src/load/run-load.js'

/**
 * The load side's counters are the demo's proof (stale reads 0, users logged out 0), so they are
 * tested against servers that misbehave on purpose: a counter that cannot see a fault proves nothing.
 */
let server: Server | undefined

afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve))
  server = undefined
})

async function listen(created: Server): Promise<string> {
  await new Promise<void>((resolve) => created.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(created.address() as AddressInfo).port}`
}

/** A tiny profile API: PATCH bumps a user's version; GET answers it, or one behind when `stale`. */
async function profileServer(stale: boolean): Promise<string> {
  const versions = new Map<number, number>()
  server = createServer((req, res) => {
    const id = Number(req.url?.split('/')[2])
    req.resume()
    req.on('end', () => {
      let version = versions.get(id) ?? 1
      if (req.method === 'PATCH') versions.set(id, ++version)
      else if (stale && versions.has(id)) version--
      res.setHeader('x-user-version', String(version))
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ id }))
    })
  })
  return listen(server)
}

/** A tiny /me: answers the user of the cookie, or, when `forgetful`, nobody for user 2. */
async function sessionServer(forgetful: boolean): Promise<string> {
  server = createServer((req, res) => {
    const userId = Number(/uid=(\d+)/.exec(req.headers.cookie ?? '')?.[1])
    req.resume()
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      if (req.url === '/me') res.end(JSON.stringify({ userId: forgetful && userId === 2 ? null : userId }))
      else res.end(JSON.stringify({ id: userId }))
    })
  })
  return listen(server)
}

describe('profile mix', () => {
  it('counts no stale read when every read-back sees the write', async () => {
    const url = await profileServer(false)
    const result = await runLoad({ url, durationMs: 1_000, connections: 4, mix: profileMix(1_000) })
    expect(result.counts.readBacks).toBeGreaterThan(10)
    expect(result.counts.staleReads).toBe(0)
  })

  it('counts every read-back that misses the write as stale', async () => {
    const url = await profileServer(true)
    const result = await runLoad({ url, durationMs: 1_000, connections: 4, mix: profileMix(1_000) })
    expect(result.counts.readBacks).toBeGreaterThan(10)
    expect(result.counts.staleReads).toBe(result.counts.readBacks)
  })
})

describe('logged-in mix', () => {
  const users = (): LoggedInUser[] => [1, 2, 3].map((userId) => ({ userId, cookie: `uid=${userId}` }))

  it('counts no logged-out user when every answer is the user itself', async () => {
    const url = await sessionServer(false)
    const result = await runLoad({ url, durationMs: 1_000, connections: 3, mix: loggedInMix(users(), 100) })
    expect(result.counts.identityChecks).toBeGreaterThan(10)
    expect(result.counts.loggedOutUsers).toBe(0)
  })

  it('counts a user whose session is forgotten as logged out', async () => {
    const url = await sessionServer(true)
    const result = await runLoad({ url, durationMs: 1_000, connections: 3, mix: loggedInMix(users(), 100) })
    expect(result.counts.loggedOutUsers).toBe(1)
    expect(result.counts.wrongIdentity).toBeGreaterThan(0)
  })
})
