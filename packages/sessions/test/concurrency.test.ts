import { afterAll, describe, expect, it } from 'vitest'
import { startExpressSessionServer } from './helpers/express-session-app.js'
import { CookieClient, httpRequest } from './helpers/http-client.js'
import { type RunningServer, startServer } from './helpers/servers.js'
import { makeSessions, randomPrefix } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const N = 50
const kit = useRedis()
const servers: RunningServer[] = []

afterAll(async () => {
  for (const server of servers) await server.close()
})

/** Fires N requests of one session at once, each setting its own field after a short pause. */
function fireConcurrently(port: number, cookie: string) {
  return Promise.all(
    Array.from({ length: N }, (_, i) =>
      httpRequest(port, 'POST', `/set?k=f${i}&v=${i}&delay=25`, { cookie }),
    ),
  )
}

describe('overlapping requests of one session', () => {
  it(`${N} concurrent requests each setting a different field: all ${N} fields are present`, async () => {
    const sessions = makeSessions(kit.redis)
    const server = await startServer('express', sessions)
    servers.push(server)
    const client = new CookieClient(server.port, sessions.cookieName)
    await client.send('POST', '/login?user=bob')
    const results = await fireConcurrently(server.port, `${sessions.cookieName}=${client.cookie}`)
    expect(results.every((r) => r.status === 200)).toBe(true)
    const data = (await client.send('GET', '/me')).json().data as Record<string, string>
    const present = Array.from({ length: N }, (_, i) => data[`f${i}`] === String(i)).filter(Boolean).length
    expect(present).toBe(N)
  })

  it('control: express-session + connect-redis loses fields under the same load', async () => {
    const server = await startExpressSessionServer(kit.server.port, randomPrefix())
    servers.push(server)
    const client = new CookieClient(server.port, 'connect.sid')
    await client.send('POST', '/set?k=start&v=1') // creates the session and its cookie
    expect(client.cookie).toBeDefined()
    const results = await fireConcurrently(server.port, `connect.sid=${client.cookie}`)
    expect(results.every((r) => r.status === 200)).toBe(true)
    const data = (await client.send('GET', '/me')).json().data as Record<string, string>
    const present = Array.from({ length: N }, (_, i) => data[`f${i}`] === String(i)).filter(Boolean).length
    expect(present).toBeLessThan(N)
  })
})
