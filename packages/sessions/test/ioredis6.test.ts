// The same package over ioredis 6 (the peer range is ^5.4.0 || ^6.0.0): the store conformance
// suite, the revocation interleavings, real HTTP through two adapters, and the breaker.
import { type RedisServer, startRedis, waitFor } from '@scale/testkit'
import type { Redis } from 'ioredis'
import { Redis as Redis6 } from 'ioredis6'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSessions } from '../src/index.js'
import { RedisSessionStore } from '../src/redis-session-store.js'
import { describeSessionStoreConformance } from '../src/testing.js'
import type { Data } from './helpers/app-routes.js'
import { CookieClient } from './helpers/http-client.js'
import { type AdapterName, type RunningServer, startServer } from './helpers/servers.js'
import { randomPrefix, SECRET } from './helpers/setup.js'

let redisServer: RedisServer
let client: Redis
const servers: RunningServer[] = []

beforeAll(async () => {
  redisServer = await startRedis()
  const redis6 = new Redis6({ host: '127.0.0.1', port: redisServer.port, maxRetriesPerRequest: 1 })
  redis6.on('error', () => {})
  // Typed against ioredis 5's declarations; the subset this package uses is the same in 6.
  client = redis6 as unknown as Redis
})

afterAll(async () => {
  for (const server of servers) await server.close()
  client.disconnect()
  await redisServer.dispose()
})

describeSessionStoreConformance(
  'Redis over ioredis 6',
  () =>
    new RedisSessionStore({
      redis: client,
      keyPrefix: randomPrefix(),
      commandTimeoutMs: 2_000,
      absoluteTimeoutMs: 86_400_000,
      coalesceWrites: true,
      circuitBreaker: false,
    }),
  { describe, it },
)

describe('ioredis 6', () => {
  it.each<AdapterName>(['express', 'fastify'])(
    '%s: login, write, read, logout, log out everywhere',
    async (adapter) => {
      const sessions = createSessions<Data>({ redis: client, secrets: [SECRET], keyPrefix: randomPrefix() })
      const server = await startServer(adapter, sessions)
      servers.push(server)
      const phone = new CookieClient(server.port, sessions.cookieName)
      const laptop = new CookieClient(server.port, sessions.cookieName)
      await phone.send('POST', '/login?user=six')
      await laptop.send('POST', '/login?user=six')
      await phone.send('POST', '/set?k=theme&v=dark')
      expect((await phone.send('GET', '/me')).json()).toMatchObject({ user: 'six', data: { theme: 'dark' } })
      await phone.send('POST', '/logout')
      expect((await phone.send('GET', '/me')).json().user).toBeNull()
      expect(await sessions.destroyAllUserSessions('six')).toBe(1)
      expect((await laptop.send('GET', '/me')).json().user).toBeNull()
    },
  )

  it('the breaker opens on a killed Redis and a probe closes it', async () => {
    const sessions = createSessions<Data>({
      redis: client,
      secrets: [SECRET],
      keyPrefix: randomPrefix(),
      commandTimeoutMs: 300,
      circuitBreaker: { failureThreshold: 2, probeIntervalMs: 100 },
    })
    const server = await startServer('node', sessions)
    servers.push(server)
    const user = new CookieClient(server.port, sessions.cookieName)
    await user.send('POST', '/login?user=six')
    await redisServer.kill()
    const messages: string[] = []
    for (let i = 0; i < 5; i++) messages.push((await user.send('GET', '/me')).json().error.message)
    expect(messages.slice(2).every((message) => message.includes('circuit open'))).toBe(true)
    await redisServer.start()
    await waitFor('recovery', async () => (await user.send('GET', '/me')).status === 200, {
      timeoutMs: 30_000,
      intervalMs: 50,
    })
  })
})
