import { type RedisServer, startRedis, waitFor } from '@scale/testkit'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CookieClient } from './helpers/http-client.js'
import { type AdapterName, type RunningServer, startServer } from './helpers/servers.js'
import { makeSessions } from './helpers/setup.js'

let redisServer: RedisServer
let redis: Redis
const servers: RunningServer[] = []
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled)
  redisServer = await startRedis()
  // ioredis defaults on purpose (offline queue, 20 retries per request): the package's own
  // deadline, not the client's settings, must keep requests from hanging.
  redis = new Redis({ host: '127.0.0.1', port: redisServer.port })
  redis.on('error', () => {})
})

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled)
  for (const server of servers) await server.close()
  redis.disconnect()
  await redisServer.dispose()
})

const adapters: AdapterName[] = ['node', 'express', 'fastify', 'hono']

describe('Redis killed', () => {
  it('fail-closed: 503 with the documented code, the process stays up, recovery when Redis returns', async () => {
    const sessions = makeSessions(redis, { commandTimeoutMs: 500 })
    const clients: Record<string, CookieClient> = {}
    for (const adapter of adapters) {
      const server = await startServer(adapter, sessions)
      servers.push(server)
      const client = new CookieClient(server.port, sessions.cookieName)
      await client.send('POST', `/login?user=${adapter}-user`)
      expect((await client.send('GET', '/me')).json().user).toBe(`${adapter}-user`)
      clients[adapter] = client
    }

    await redisServer.kill()

    for (const adapter of adapters) {
      const client = clients[adapter] as CookieClient
      for (const [method, path] of [
        ['GET', '/me'],
        ['POST', '/set?k=a&v=1'],
      ] as const) {
        const res = await client.send(method, path)
        expect(res.status, `${adapter} ${method} ${path}`).toBe(503)
        // Express hands the error to its error handler (status 503, its own body); the others
        // answer with the package's JSON error.
        if (adapter !== 'express')
          expect(res.json().code ?? res.json().error.code).toBe('E_SESSION_STORE_UNAVAILABLE')
      }
      // A visitor without a session cookie needs no Redis to be served.
      const visitor = new CookieClient(client.port, sessions.cookieName)
      expect((await visitor.send('GET', '/public')).status).toBe(200)
      // A login needs Redis: refused, not faked.
      expect((await visitor.send('POST', '/login?user=z')).status).toBe(503)
    }

    await redisServer.start()
    for (const adapter of adapters) {
      const client = clients[adapter] as CookieClient
      // The data died with the non-persistent Redis: the old cookie is now simply anonymous.
      await waitFor(
        `${adapter} to answer 200 again`,
        async () => (await client.send('GET', '/me')).status === 200,
        {
          timeoutMs: 30_000,
          intervalMs: 200,
        },
      )
      await client.send('POST', `/login?user=${adapter}-again`)
      expect((await client.send('GET', '/me')).json().user).toBe(`${adapter}-again`)
    }
    expect(unhandled).toEqual([])
  })

  it('a hung Redis (SIGSTOP) costs a 503 after commandTimeoutMs, not a hung request', async () => {
    const sessions = makeSessions(redis, { commandTimeoutMs: 500 })
    const server = await startServer('express', sessions)
    servers.push(server)
    const client = new CookieClient(server.port, sessions.cookieName)
    await client.send('POST', '/login?user=paula')
    redisServer.pause()
    try {
      expect((await client.send('GET', '/me')).status).toBe(503)
    } finally {
      redisServer.resume()
    }
    await waitFor(
      'Redis to answer again',
      async () => (await client.send('GET', '/me')).json().user === 'paula',
      {
        timeoutMs: 30_000,
        intervalMs: 200,
      },
    )
    expect(unhandled).toEqual([])
  })

  it("'anonymous' policy: requests continue logged-out while Redis is down, logins are refused", async () => {
    const sessions = makeSessions(redis, { commandTimeoutMs: 500, onRedisDown: 'anonymous' })
    const server = await startServer('hono', sessions)
    servers.push(server)
    const client = new CookieClient(server.port, sessions.cookieName)
    await client.send('POST', '/login?user=olga')
    await redisServer.kill()
    const me = await client.send('GET', '/me')
    expect(me.status).toBe(200)
    expect(me.json().user).toBeNull()
    expect(me.setCookies).toEqual([]) // the cookie is kept for when Redis returns
    expect((await client.send('POST', '/set?k=a&v=1')).status).toBe(200)
    expect((await client.send('POST', '/login?user=olga')).status).toBe(503)
    await redisServer.start()
    await waitFor(
      'the session store to answer',
      async () => (await client.send('POST', '/login?user=olga')).status === 200,
      {
        timeoutMs: 30_000,
        intervalMs: 200,
      },
    )
    expect((await client.send('GET', '/me')).json().user).toBe('olga')
    expect(unhandled).toEqual([])
  })
})
