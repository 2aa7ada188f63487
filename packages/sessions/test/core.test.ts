import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { afterAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { withFetchSession } from '../src/hono.js'
import {
  createSessions,
  SessionConfigError,
  SessionDataInvalidError,
  SessionDataNotSerializableError,
  SessionStateError,
  SessionsOptionsError,
} from '../src/index.js'
import { CookieClient, httpRequest } from './helpers/http-client.js'
import { type RunningServer, startServer } from './helpers/servers.js'
import { makeSessions, randomPrefix, SECRET } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()
const closers: (() => Promise<void>)[] = []

afterAll(async () => {
  for (const close of closers) await close()
})

describe('configuration', () => {
  it('rejects unusable options with SessionsOptionsError naming the option', () => {
    const cases: Record<string, [string, Parameters<typeof createSessions>[0]]> = {
      'no secrets': ['secrets', { redis: kit.redis, secrets: [] }],
      'short secret': ['secrets', { redis: kit.redis, secrets: ['short'] }],
      'absolute below idle': [
        'absoluteTimeoutMs',
        { redis: kit.redis, secrets: [SECRET], idleTimeoutMs: 10_000, absoluteTimeoutMs: 5_000 },
      ],
      'touch after idle': [
        'touchAfterMs',
        { redis: kit.redis, secrets: [SECRET], idleTimeoutMs: 10_000, touchAfterMs: 10_000 },
      ],
      'SameSite=None without Secure': [
        'cookie.sameSite',
        { redis: kit.redis, secrets: [SECRET], cookie: { sameSite: 'None', secure: false } },
      ],
      'bad cookie name': ['cookie.name', { redis: kit.redis, secrets: [SECRET], cookie: { name: 'a b' } }],
    }
    for (const [label, [option, options]] of Object.entries(cases)) {
      let caught: unknown
      try {
        createSessions(options)
      } catch (error) {
        caught = error
      }
      expect(caught, label).toBeInstanceOf(SessionsOptionsError)
      expect((caught as SessionsOptionsError).code).toBe('E_SESSIONS_INVALID_OPTIONS')
      expect((caught as SessionsOptionsError).context.option, label).toBe(option)
      expect((caught as Error).message).toMatch(/^\[@scale\/sessions\]/)
      // The deprecated name still catches it for one minor version.
      expect(caught, label).toBeInstanceOf(SessionConfigError)
    }
  })

  it('uses __Host- only when the attributes allow it', () => {
    expect(createSessions({ redis: kit.redis, secrets: [SECRET] }).cookieName).toBe('__Host-sid')
    expect(
      createSessions({ redis: kit.redis, secrets: [SECRET], cookie: { domain: 'example.com' } }).cookieName,
    ).toBe('sid')
    expect(
      createSessions({ redis: kit.redis, secrets: [SECRET], cookie: { secure: false } }).cookieName,
    ).toBe('sid')
    expect(createSessions({ redis: kit.redis, secrets: [SECRET], cookie: { path: '/app' } }).cookieName).toBe(
      'sid',
    )
  })
})

describe('typed schema', () => {
  it('validates on set, types the data, and reads stale stored values as absent', async () => {
    const errors: Error[] = []
    const keyPrefix = randomPrefix()
    const sessions = createSessions({
      redis: kit.redis,
      secrets: [SECRET],
      keyPrefix,
      fields: { theme: z.enum(['light', 'dark']), cart: z.array(z.string()).max(3) },
      onError: (error) => errors.push(error),
    })
    const session = await sessions.load({})
    session.set('theme', 'dark')
    session.set('cart', ['apple'])
    expect(() => session.set('cart', ['a', 'b', 'c', 'd'])).toThrow(SessionDataInvalidError)
    // @ts-expect-error the schema types the field
    expect(() => session.set('theme', 'blue')).toThrow(SessionDataInvalidError)
    const { setCookie } = await sessions.commit(session)
    const cookie = (setCookie as string).split(';')[0] as string

    const again = await sessions.load({ cookie })
    const theme: 'light' | 'dark' | undefined = again.get('theme')
    expect(theme).toBe('dark')
    expect(again.get('cart')).toEqual(['apple'])

    // A deploy changed the schema; a stored value that no longer fits reads as absent.
    const [key] = await kit.redis.keys(`${keyPrefix}*:s:*`)
    await kit.redis.hset(key as string, 'd:theme', JSON.stringify('sepia'))
    const stale = await sessions.load({ cookie })
    expect(stale.get('theme')).toBeUndefined()
    expect(errors.some((error) => error instanceof SessionDataInvalidError)).toBe(true)
  })

  it('refuses values that are not JSON and changes after the response', async () => {
    const sessions = makeSessions(kit.redis)
    const session = await sessions.load({})
    expect(() => session.set('n', 10n)).toThrow(SessionDataNotSerializableError)
    expect(() => session.set('u', undefined)).toThrow(SessionDataNotSerializableError)
    session.set('ok', 1)
    await sessions.commit(session)
    expect(() => session.set('late', 1)).toThrow(SessionStateError)
  })
})

describe('same field from overlapping requests', () => {
  it('last write wins, per field: the value is one of the written ones, other fields intact', async () => {
    const sessions = makeSessions(kit.redis)
    const server: RunningServer = await startServer('node', sessions)
    closers.push(server.close)
    const client = new CookieClient(server.port, sessions.cookieName)
    await client.send('POST', '/set?k=other&v=keep')
    const cookie = `${sessions.cookieName}=${client.cookie}`
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        httpRequest(server.port, 'POST', `/set?k=color&v=c${i}&delay=10`, { cookie }),
      ),
    )
    const data = (await client.send('GET', '/me')).json().data
    expect(data.other).toBe('keep')
    expect(data.color).toMatch(/^c(1?\d)$/)
  })
})

describe('Fetch adapter', () => {
  it('logs in, reads, updates and logs out through a Fetch-API server', async () => {
    const sessions = makeSessions(kit.redis)
    const handler = withFetchSession(sessions, async (request, session) => {
      const url = new URL(request.url)
      if (url.pathname === '/login') await session.regenerate({ userId: 'fetch-user' })
      if (url.pathname === '/set') session.set('k', url.searchParams.get('v'))
      if (url.pathname === '/logout') await session.destroy()
      return Response.json({ user: session.userId ?? null, data: session.toJSON() })
    })
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: handler, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server))
    })
    closers.push(() => new Promise((resolve) => server.close(() => resolve())))
    const client = new CookieClient((server.address() as AddressInfo).port, sessions.cookieName)
    await client.send('POST', '/login')
    expect((await client.send('GET', '/me')).json().user).toBe('fetch-user')
    await client.send('POST', '/set?v=1')
    expect((await client.send('GET', '/me')).json().data).toEqual({ k: '1' })
    await client.send('POST', '/logout')
    expect(client.cookie).toBeUndefined()
    expect((await client.send('GET', '/me')).json().user).toBeNull()
  })
})

describe('regenerate({ userId }) with a user ID that is not one', () => {
  it('a user object, a number or an empty string is refused, so distinct users never share one identity', async () => {
    const sessions = makeSessions(kit.redis)
    for (const userId of [{ id: 'ann' }, { id: 'bob' }, 5, '']) {
      const session = await sessions.load({})
      await expect(session.regenerate({ userId: userId as unknown as string })).rejects.toBeInstanceOf(
        SessionStateError,
      )
      expect(session.userId).toBeUndefined()
      expect(await sessions.commit(session)).toEqual({ setCookie: undefined })
    }
    expect(await sessions.listUserSessions('[object Object]')).toEqual([])
    expect(await sessions.listUserSessions('')).toEqual([])
  })
})
