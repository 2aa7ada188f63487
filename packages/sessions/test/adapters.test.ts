import { afterAll, describe, expect, it } from 'vitest'
import { CookieClient } from './helpers/http-client.js'
import { type AdapterName, type RunningServer, startServer } from './helpers/servers.js'
import { makeSessions } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()

describe.each<AdapterName>(['node', 'express', 'fastify', 'hono'])('%s adapter', (adapter) => {
  let server: RunningServer
  const sessions = () => makeSessions(kit.redis)

  afterAll(async () => {
    await server?.close()
  })

  it('logs in, reads, updates and logs out through a real server', async () => {
    const s = sessions()
    server = await startServer(adapter, s)
    const client = new CookieClient(server.port, s.cookieName)

    const anonymous = await client.send('GET', '/me')
    expect(anonymous.status).toBe(200)
    expect(anonymous.json().user).toBeNull()
    expect(anonymous.setCookies).toEqual([]) // nothing stored, nothing sent for an unchanged anonymous session

    const login = await client.send('POST', '/login?user=alice')
    expect(login.status).toBe(200)
    expect(login.setCookies).toHaveLength(1)
    const setCookie = login.setCookies[0] as string
    expect(setCookie).toMatch(/^__Host-sid=/)
    expect(setCookie).toContain('HttpOnly')
    expect(setCookie).toContain('Secure')
    expect(setCookie).toContain('SameSite=Lax')
    expect(setCookie).toContain('Path=/')
    expect(client.cookie).toBeDefined()

    const me = await client.send('GET', '/me')
    expect(me.json()).toMatchObject({ user: 'alice', data: {} })

    const update = await client.send('POST', '/set?k=theme&v=dark')
    expect(update.status).toBe(200)
    expect(update.setCookies).toEqual([]) // same session: no new cookie
    expect((await client.send('GET', '/me')).json()).toMatchObject({ user: 'alice', data: { theme: 'dark' } })

    await client.send('POST', '/delete?k=theme')
    expect((await client.send('GET', '/me')).json().data).toEqual({})

    const cookieBeforeLogout = client.cookie
    const logout = await client.send('POST', '/logout')
    expect(logout.status).toBe(200)
    expect(logout.setCookies[0]).toMatch(/Max-Age=0/)
    expect(client.cookie).toBeUndefined()
    // Replaying the pre-logout cookie authenticates nobody.
    client.cookie = cookieBeforeLogout
    expect((await client.send('GET', '/me')).json().user).toBeNull()
    expect(await s.listUserSessions('alice')).toEqual([])
  })
})
