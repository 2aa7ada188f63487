import { describe, expect, it } from 'vitest'
import type { Sessions } from '../src/index.js'
import type { Data } from './helpers/app-routes.js'
import { makeSessions } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()

async function login(sessions: Sessions<Data>, user: string): Promise<{ pair: string; setCookie: string }> {
  const session = await sessions.load({})
  await session.regenerate({ userId: user })
  const setCookie = (await sessions.commit(session)).setCookie as string
  return { pair: setCookie.split(';')[0] as string, setCookie }
}

describe('which cookie, and for how long', () => {
  it('Max-Age is rounded up: the cookie never expires before the session', async () => {
    // An absolute timeout that is not a whole number of seconds makes rounding visible.
    const sessions = makeSessions(kit.redis, { idleTimeoutMs: 10_500, absoluteTimeoutMs: 20_700 })
    const session = await sessions.load({})
    await session.regenerate({ userId: 'max' })
    const { setCookie } = await sessions.commit(session)
    const maxAge = Number(/Max-Age=(\d+)/.exec(setCookie as string)?.[1])
    expect(maxAge * 1000).toBeGreaterThanOrEqual(session.expiresAt.getTime() - Date.now())
    expect(maxAge).toBe(21)
  })

  it('a junk duplicate placed first neither logs the user out nor gets their cookie cleared', async () => {
    const sessions = makeSessions(kit.redis, { cookie: { name: 'sid', secure: false } })
    const { pair } = await login(sessions, 'jo')
    const cookie = `sid=junk-from-a-sibling-subdomain; ${pair}`
    const session = await sessions.load({ cookie })
    expect(session.userId).toBe('jo')
    session.set('seen', true)
    expect((await sessions.commit(session)).setCookie).toBeUndefined()
  })

  it('a validly signed but ended cookie first: the live one after it wins', async () => {
    const sessions = makeSessions(kit.redis, { cookie: { name: 'sid', secure: false } })
    const ended = await login(sessions, 'old')
    const ending = await sessions.load({ cookie: ended.pair })
    await ending.destroy()
    await sessions.commit(ending)
    const live = await login(sessions, 'new')
    expect((await sessions.load({ cookie: `${ended.pair}; ${live.pair}` })).userId).toBe('new')
  })

  it('only junk: anonymous, and the junk cookie is cleared', async () => {
    const sessions = makeSessions(kit.redis, { cookie: { name: 'sid', secure: false } })
    const session = await sessions.load({ cookie: 'sid=junk; sid=more-junk' })
    expect(session.userId).toBeUndefined()
    expect((await sessions.commit(session)).setCookie).toMatch(/^sid=; .*Max-Age=0/)
  })

  it('"remember me" off: a browser-session cookie (no Max-Age), kept across rotations; on: Max-Age', async () => {
    const sessions = makeSessions(kit.redis)
    const session = await sessions.load({})
    await session.regenerate({ userId: 'rita', persistent: false })
    const first = (await sessions.commit(session)).setCookie as string
    expect(first).not.toMatch(/Max-Age|Expires/)
    const cookie = first.split(';')[0] as string
    const next = await sessions.load({ cookie })
    expect(next.persistent).toBe(false)
    await next.regenerate({ keepData: true })
    const rotated = (await sessions.commit(next)).setCookie as string
    expect(rotated).not.toMatch(/Max-Age/)
    const again = await sessions.load({ cookie: rotated.split(';')[0] as string })
    await again.regenerate({ persistent: true })
    expect((await sessions.commit(again)).setCookie).toMatch(/Max-Age=\d+/)
  })
})
