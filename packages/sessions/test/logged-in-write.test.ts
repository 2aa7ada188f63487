import { waitFor } from '@scale/testkit'
import { describe, expect, it } from 'vitest'
import { type Session, SessionStoreUnavailableError, type Sessions } from '../src/index.js'
import { META, sessionKey } from '../src/redis-keys.js'
import type { Data } from './helpers/app-routes.js'
import { resetCounts, sessionCommandCounts } from './helpers/redis-writes.js'
import { makeSessions, randomPrefix } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()

/** A logged-in session stored in Redis, and the Cookie header that names it. */
async function loggedIn(sessions: Sessions<Data>, user: string) {
  const login = await sessions.load({})
  await login.regenerate({ userId: user })
  login.set('cart', ['book'])
  const { setCookie } = await sessions.commit(login)
  const value = (setCookie as string).split(';')[0]?.split('=').slice(1).join('=') as string
  return {
    cookie: `${sessions.cookieName}=${value}`,
    tag: value.split('.')[0] as string,
    handle: login.handle,
  }
}

const userOf = async (sessions: Sessions<Data>, cookie: string) => (await sessions.load({ cookie })).userId

describe('a logged-in write is one HSET and still cannot outlive a revocation', () => {
  it('a field write of a logged-in session is one command; a revoked one stores nothing', async () => {
    const keyPrefix = randomPrefix()
    const sessions = makeSessions(kit.redis, { keyPrefix, touchAfterMs: 600_000 })
    const { cookie } = await loggedIn(sessions, 'ann')

    await resetCounts(kit.server)
    const request = await sessions.load({ cookie })
    request.set('theme', 'dark')
    await sessions.commit(request)
    expect(await sessionCommandCounts(kit.server)).toEqual({ hgetall: 1, hset: 1 })

    // A request that loaded the session before "log out everywhere" writes after it.
    const slow = await sessions.load({ cookie })
    await sessions.destroyAllUserSessions('ann')
    slow.set('theme', 'light')
    const { setCookie } = await sessions.commit(slow)
    expect(setCookie).toMatch(/Max-Age=0/)
    expect(await userOf(sessions, cookie)).toBeUndefined()
    expect(await kit.redis.keys(`${keyPrefix}*:s:*`)).toEqual([])
  })

  it('the stray hash of a write in flight never passes for the session it replaced', async () => {
    // The one-HSET write of a session that ended meanwhile creates a hash (`~c` and the field)
    // for one round trip before deleting it. A rotation or a read landing in that window must
    // find no session: here the window is held open by writing that hash by hand.
    const keyPrefix = randomPrefix()
    const sessions = makeSessions(kit.redis, { keyPrefix })
    const { cookie, tag, handle } = await loggedIn(sessions, 'bob')
    const rotating: Session<Data> = await sessions.load({ cookie })
    const createdAt = String(rotating.createdAt.getTime())

    expect(await sessions.destroyUserSession('bob', handle)).toBe(true)
    const key = sessionKey(keyPrefix, tag, handle)
    expect(await kit.redis.hset(key, META.createdAt, createdAt, 'd:theme', '"dark"')).toBe(2)

    expect(await userOf(sessions, cookie)).toBeUndefined()
    await rotating.regenerate({ keepData: true })
    const { setCookie } = await sessions.commit(rotating)
    expect(setCookie).toBeUndefined()
    expect(await sessions.listUserSessions('bob')).toEqual([])
  })

  it('a write that timed out on a hung Redis and landed after a revocation leaves no stray hash', async () => {
    // Redis hung (SIGSTOP) past commandTimeoutMs: the caller gets the outage error, but the HSET
    // is still in the socket and is applied when Redis resumes, on a session revoked meanwhile.
    // Its stray hash has no TTL, so it must still be deleted then, or it stays forever.
    const keyPrefix = randomPrefix()
    const sessions = makeSessions(kit.redis, { keyPrefix, touchAfterMs: 600_000, commandTimeoutMs: 300 })
    const { cookie } = await loggedIn(sessions, 'cyd')
    const slow = await sessions.load({ cookie })
    await sessions.destroyAllUserSessions('cyd')
    slow.set('theme', 'dark')
    kit.server.pause()
    try {
      await expect(sessions.commit(slow)).rejects.toBeInstanceOf(SessionStoreUnavailableError)
    } finally {
      kit.server.resume()
    }
    await waitFor(
      'the stray hash to be deleted',
      async () => (await kit.redis.keys(`${keyPrefix}*:s:*`)).length === 0,
      { timeoutMs: 5_000, intervalMs: 50 },
    )
    expect(await userOf(sessions, cookie)).toBeUndefined()
  })
})
