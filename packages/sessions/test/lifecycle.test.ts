import { waitFor } from '@scale/testkit'
import { afterAll, describe, expect, it } from 'vitest'
import { CookieClient, httpRequest } from './helpers/http-client.js'
import { resetCounts, sessionCommandCounts, writeCounts } from './helpers/redis-writes.js'
import { type RunningServer, startServer } from './helpers/servers.js'
import { makeSessions, randomPrefix } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()
const servers: RunningServer[] = []

afterAll(async () => {
  for (const server of servers) await server.close()
})

async function serve(options: Parameters<typeof makeSessions>[1] = {}) {
  const sessions = makeSessions(kit.redis, options)
  const server = await startServer('node', sessions)
  servers.push(server)
  return { sessions, server, client: () => new CookieClient(server.port, sessions.cookieName) }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('regenerate', () => {
  it('kills the old ID at once; data is kept only when asked', async () => {
    const { server, sessions, client: newClient } = await serve()
    const client = newClient()
    await client.send('POST', '/set?k=cart&v=apples')
    const anonymousCookie = client.cookie as string
    expect(anonymousCookie).toBeDefined()

    await client.send('POST', '/login?user=carol&keep=1')
    expect(client.cookie).not.toBe(anonymousCookie)
    expect((await client.send('GET', '/me')).json()).toMatchObject({
      user: 'carol',
      data: { cart: 'apples' },
    })
    const old = await httpRequest(server.port, 'GET', '/me', {
      cookie: `${sessions.cookieName}=${anonymousCookie}`,
    })
    expect(old.json()).toMatchObject({ user: null, data: {} })

    // Without keepData the new session starts empty.
    const other = newClient()
    await other.send('POST', '/set?k=cart&v=pears')
    await other.send('POST', '/login?user=dave')
    expect((await other.send('GET', '/me')).json()).toMatchObject({ user: 'dave', data: {} })

    // Rotating a logged-in session keeps the user; the previous cookie stops authenticating.
    const beforeRotation = client.cookie as string
    await client.send('POST', '/regenerate')
    expect((await client.send('GET', '/me')).json().user).toBe('carol')
    const replay = await httpRequest(server.port, 'GET', '/me', {
      cookie: `${sessions.cookieName}=${beforeRotation}`,
    })
    expect(replay.json().user).toBeNull()
    expect((await sessions.listUserSessions('carol')).length).toBe(1)
  })

  it('a slow request still holding the old ID cannot bring it back', async () => {
    const { server, sessions, client: newClient } = await serve()
    const client = newClient()
    await client.send('POST', '/login?user=erin')
    const oldCookie = `${sessions.cookieName}=${client.cookie}`
    await resetCounts(kit.server)
    const slow = httpRequest(server.port, 'POST', '/set?k=late&v=1&delay=1500', { cookie: oldCookie })
    // Redis has run the slow request's HGETALL: it holds the old, still live session, and waits
    // 1.5 s before writing, time enough for the regenerate below even on a loaded machine.
    await waitFor('the slow request to load the session', async () => {
      return ((await kit.server.commandCounts()).hgetall ?? 0) >= 1
    })
    await client.send('POST', '/regenerate')
    const slowResult = await slow
    expect(slowResult.status).toBe(200)
    expect(slowResult.setCookies[0]).toMatch(/Max-Age=0/) // told to drop the dead cookie
    expect((await httpRequest(server.port, 'GET', '/me', { cookie: oldCookie })).json().user).toBeNull()
    const keys = await kit.redis.keys('*:s:*')
    const live = await sessions.listUserSessions('erin')
    expect(live).toHaveLength(1)
    // Only the regenerated session exists for erin; the old hash was not recreated by the late write.
    expect((await client.send('GET', '/me')).json().data).toEqual({})
    expect(keys.filter((key) => key.includes(live[0]?.handle as string))).toHaveLength(1)
  })
})

describe('timeouts', () => {
  it('idle timeout: activity keeps the session alive, silence ends it, never early', async () => {
    const idleTimeoutMs = 3_000
    const touchAfterMs = 300
    const { client: newClient, sessions } = await serve({
      idleTimeoutMs,
      touchAfterMs,
      absoluteTimeoutMs: 600_000,
    })
    const client = newClient()
    await client.send('POST', '/login?user=frank')
    const activeUntil = Date.now() + idleTimeoutMs * 1.5
    let lastRequestStart = Date.now()
    while (Date.now() < activeUntil) {
      lastRequestStart = Date.now()
      expect((await client.send('GET', '/me')).json().user).toBe('frank')
      await sleep(150)
    }
    // Sliding expiry carried it past one idle period; now stop using it. Watch from the Redis
    // side (an HTTP request would itself count as activity and extend the session).
    let endedAt = 0
    await waitFor(
      'the idle session to end',
      async () => {
        const live = await sessions.listUserSessions('frank')
        endedAt = Date.now()
        return live.length === 0
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    )
    // The session ends no earlier than idle - touchAfter after its last use...
    expect(endedAt - lastRequestStart).toBeGreaterThanOrEqual(idleTimeoutMs - touchAfterMs)
    // ...and its cookie no longer authenticates.
    expect((await client.send('GET', '/me')).json().user).toBeNull()
  })

  it('absolute timeout ends an active session', async () => {
    // 4 s: a poll lands between the idle timeout (2 s) and the cap even on a loaded machine.
    const absoluteTimeoutMs = 4_000
    const { client: newClient, sessions } = await serve({
      idleTimeoutMs: 2_000,
      touchAfterMs: 100,
      absoluteTimeoutMs,
    })
    const client = newClient()
    const loginAt = Date.now()
    await client.send('POST', '/login?user=gina')
    let aliveAfterIdle = false
    let endedAt = 0
    await waitFor(
      'the absolute timeout to end the session',
      async () => {
        const user = (await client.send('GET', '/me')).json().user
        endedAt = Date.now()
        if (user === 'gina' && endedAt - loginAt > 2_000) aliveAfterIdle = true
        return user === null
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    )
    expect(aliveAfterIdle).toBe(true) // it outlived one idle period thanks to activity...
    expect(endedAt - loginAt).toBeGreaterThanOrEqual(absoluteTimeoutMs) // ...and ended at the cap, not before
    await waitFor(
      'Redis to expire the key',
      async () => (await sessions.listUserSessions('gina')).length === 0,
    )
  })
})

describe('writes only when something changed', () => {
  it('reads cost one HGETALL and no write; the touch is throttled', async () => {
    // Two servers over the same sessions: one whose touch cannot fall due during the test (so
    // "no write" does not depend on how fast a loaded machine serves 21 requests), and one with a
    // short touchAfterMs to show the touch once it is due.
    const keyPrefix = randomPrefix()
    const quiet = await serve({ keyPrefix, touchAfterMs: 50_000, idleTimeoutMs: 60_000 })
    const touching = await serve({ keyPrefix, touchAfterMs: 2_000, idleTimeoutMs: 60_000 })
    const client = quiet.client()
    await client.send('POST', '/login?user=hank')
    await client.send('POST', '/set?k=a&v=1')
    await resetCounts(kit.server)
    for (let i = 0; i < 20; i++) {
      const res = await client.send('GET', '/me')
      expect(res.json().data).toEqual({ a: '1' })
      expect(res.setCookies).toEqual([])
    }
    // Setting a field to the value it already has is no change either.
    await client.send('POST', '/set?k=a&v=1')
    const counts = await sessionCommandCounts(kit.server)
    expect(counts).toEqual({ hgetall: 21 })

    // Once touchAfterMs has passed, one read extends the expiry (one script: HSET ~t + PEXPIRE)
    // and the reads right after it do not.
    // (2 s: the three reads below fall within one touchAfterMs even on a loaded machine.)
    await sleep(2_100)
    client.port = touching.server.port
    await resetCounts(kit.server)
    await client.send('GET', '/me')
    await client.send('GET', '/me')
    await client.send('GET', '/me')
    const touched = await writeCounts(kit.server)
    expect(touched).toEqual({ evalsha: 1, pexpire: 1, hset: 1 })

    // ...and a logged-in read+write is two commands in all: the HGETALL and one HSET of the
    // changed field (no script: the HSET's reply says whether the session still existed).
    client.port = quiet.server.port
    await resetCounts(kit.server)
    await client.send('POST', '/set?k=b&v=2')
    const changed = await sessionCommandCounts(kit.server)
    expect(changed).toEqual({ hgetall: 1, hset: 1 })
  })
})

describe('storage and signing', () => {
  it('Redis holds only hashes of session IDs: a dump reveals no usable cookie', async () => {
    const { client: newClient } = await serve()
    const client = newClient()
    await client.send('POST', '/login?user=ivy')
    const sessionId = (client.cookie as string).split('.')[1] as string
    const keys = await kit.redis.keys('*')
    let dump = keys.join('\n')
    for (const key of keys) {
      const type = await kit.redis.type(key)
      if (type === 'hash') dump += JSON.stringify(await kit.redis.hgetall(key))
      if (type === 'set') dump += JSON.stringify(await kit.redis.smembers(key))
    }
    expect(dump.length).toBeGreaterThan(0)
    expect(dump).not.toContain(sessionId)
  })

  it('key rotation: old keys verify and the cookie is re-signed with the newest', async () => {
    const prefix = randomPrefix()
    const oldKey = 'old-key-old-key-old-key-old-key-0000'
    const newKey = 'new-key-new-key-new-key-new-key-1111'
    const before = await serve({ keyPrefix: prefix, secrets: [oldKey] })
    const client = before.client()
    await client.send('POST', '/login?user=jack')
    const signedWithOld = client.cookie as string

    const rotated = await serve({ keyPrefix: prefix, secrets: [newKey, oldKey] })
    client.port = rotated.server.port
    const res = await client.send('GET', '/me')
    expect(res.json().user).toBe('jack')
    expect(res.setCookies).toHaveLength(1)
    expect(client.cookie).not.toBe(signedWithOld)
    expect((await client.send('GET', '/me')).setCookies).toEqual([]) // re-signed once, not on every request

    const retired = await serve({ keyPrefix: prefix, secrets: [newKey] })
    client.port = retired.server.port
    expect((await client.send('GET', '/me')).json().user).toBe('jack')
    const replayOld = await httpRequest(retired.server.port, 'GET', '/me', {
      cookie: `${retired.sessions.cookieName}=${signedWithOld}`,
    })
    expect(replayOld.json().user).toBeNull()
  })
})
