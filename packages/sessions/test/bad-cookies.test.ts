import { afterAll, describe, expect, it } from 'vitest'
import { CookieClient, httpRequest } from './helpers/http-client.js'
import { resetCounts, sessionCommandCounts, writeCounts } from './helpers/redis-writes.js'
import { type AdapterName, type RunningServer, startServer } from './helpers/servers.js'
import { makeSessions } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()

function flip(value: string, at: number): string {
  const c = value[at] === 'A' ? 'B' : 'A'
  return value.slice(0, at) + c + value.slice(at + 1)
}

describe.each<AdapterName>(['node', 'express', 'fastify', 'hono'])('bad cookies via %s', (adapter) => {
  let server: RunningServer

  afterAll(async () => {
    await server?.close()
  })

  it('tampered, truncated, garbage, oversized and wrongly-signed cookies: anonymous, 2xx, nothing written', async () => {
    const sessions = makeSessions(kit.redis)
    server = await startServer(adapter, sessions)
    const name = sessions.cookieName

    const victim = new CookieClient(server.port, name)
    await victim.send('POST', '/login?user=victim')
    const valid = victim.cookie as string
    expect(valid.split('.')).toHaveLength(3)

    // A real cookie from a deployment with another secret (right shape, wrong key).
    const otherSessions = makeSessions(kit.redis, { secrets: ['another-secret-another-secret-0123456789'] })
    const otherServer = await startServer(adapter, otherSessions)
    const other = new CookieClient(otherServer.port, otherSessions.cookieName)
    await other.send('POST', '/login?user=victim')
    await otherServer.close()

    const [tag, id, sig] = valid.split('.') as [string, string, string]
    const bad: Record<string, string> = {
      'tampered id': `${tag}.${flip(id, 5)}.${sig}`,
      'tampered tag': `${flip(tag, 0)}.${id}.${sig}`,
      'tampered signature': `${tag}.${id}.${flip(sig, 10)}`,
      'non-canonical signature padding': `${tag}.${id}.${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}`,
      truncated: valid.slice(0, -4),
      'id only': id,
      garbage: 'ZZZ%%%<script>alert(1)</script>',
      'garbage with dots': 'a.b.c',
      empty: '',
      oversized: 'A'.repeat(12_000),
      'wrongly signed': other.cookie as string,
    }
    const keysBefore = Number(await kit.server.command('dbsize'))
    for (const [label, cookie] of Object.entries(bad)) {
      await resetCounts(kit.server)
      for (const path of ['/me', '/public']) {
        const res = await httpRequest(server.port, 'GET', path, { cookie: `${name}=${cookie}` })
        expect(res.status, `${label} ${path}`).toBe(200)
        if (path === '/me') expect(res.json().user, label).toBeNull()
      }
      // Nothing reached Redis at all: the cookie is rejected before any lookup.
      expect(await sessionCommandCounts(kit.server), label).toEqual({})
      // A write route still works: it starts a new session with a new cookie.
      const write = await httpRequest(server.port, 'POST', '/set?k=x&v=1', { cookie: `${name}=${cookie}` })
      expect(write.status, label).toBe(200)
      const issued = write.setCookies.find((line) => line.startsWith(`${name}=`)) as string
      expect(issued, label).toBeDefined()
      expect(issued.split(';')[0]).not.toBe(`${name}=${cookie}`)
    }
    // Each bad-cookie write made exactly one new session; nothing else appeared.
    expect(Number(await kit.server.command('dbsize'))).toBe(keysBefore + Object.keys(bad).length)

    // The victim's real session is untouched by all of it.
    expect((await victim.send('GET', '/me')).json().user).toBe('victim')

    // A Cookie header near Node's 16 KB header limit, full of junk: the junk is ignored and the
    // one cookie that verifies is used.
    const huge = await httpRequest(server.port, 'GET', '/me', {
      cookie: `a=${'y'.repeat(5_000)}; ${name}=${'x'.repeat(10_000)}; ${name}=${valid}`,
    })
    expect(huge.status).toBe(200)
    expect(huge.json().user).toBe('victim')

    // A correctly signed cookie of a session that ended: one read, no write.
    await victim.send('POST', '/logout')
    await resetCounts(kit.server)
    const ended = await httpRequest(server.port, 'GET', '/me', { cookie: `${name}=${valid}` })
    expect(ended.status).toBe(200)
    expect(ended.json().user).toBeNull()
    expect(await writeCounts(kit.server)).toEqual({})
  })
})
