import { type RedisCluster, startRedisCluster } from '@scale/testkit'
import { Cluster, type Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Sessions } from '../src/index.js'
import type { Data } from './helpers/app-routes.js'
import { CookieClient } from './helpers/http-client.js'
import { type AdapterName, type RunningServer, startServer } from './helpers/servers.js'
import { makeSessions, randomPrefix } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()
let cluster: RedisCluster
let clusterClient: Cluster
const servers: RunningServer[] = []

beforeAll(async () => {
  cluster = await startRedisCluster()
  clusterClient = new Cluster(cluster.startupNodes, { redisOptions: { maxRetriesPerRequest: 1 } })
  clusterClient.on('error', () => {})
})

afterAll(async () => {
  for (const server of servers) await server.close()
  clusterClient.disconnect()
  await cluster.stop()
})

async function loginDevices(sessions: Sessions<Data>, adapter: AdapterName, user: string, agents: string[]) {
  const server = await startServer(adapter, sessions)
  servers.push(server)
  const clients: CookieClient[] = []
  for (const agent of agents) {
    const client = new CookieClient(server.port, sessions.cookieName)
    await client.send('POST', `/login?user=${user}`, { 'user-agent': agent })
    clients.push(client)
  }
  const me = (client: CookieClient) => client.send('GET', '/me').then((res) => res.json())
  return { clients, me }
}

describe.each([
  ['single Redis', () => kit.redis as Redis | Cluster],
  ['Redis Cluster', () => clusterClient as Redis | Cluster],
])('per-user index on %s', (_label, client) => {
  it('lists, destroys one, destroys all', async () => {
    const sessions = makeSessions(client())
    const agents = ['Firefox on laptop', 'Safari on phone', 'Chrome on tablet', 'curl']
    const { clients, me } = await loginDevices(sessions, 'fastify', 'kim', agents)
    // Another user's sessions must survive kim's "log out everywhere".
    const { clients: others, me: meOther } = await loginDevices(sessions, 'hono', 'lee', ['Edge'])

    const listed = await sessions.listUserSessions('kim')
    expect(listed.map((s) => s.userAgent).sort()).toEqual([...agents].sort())
    for (const entry of listed) {
      expect(entry.createdAt.getTime()).toBeLessThanOrEqual(entry.lastSeenAt.getTime())
      expect(entry.expiresAt.getTime()).toBeGreaterThan(Date.now())
    }

    // Destroy one: the phone, by its handle; a handle of another user is refused.
    const phone = listed.find((s) => s.userAgent === 'Safari on phone')
    const leeHandle = (await me(others[0] as CookieClient)).handle as string
    expect(await sessions.destroyUserSession('kim', leeHandle)).toBe(false)
    expect(await sessions.destroyUserSession('kim', phone?.handle as string)).toBe(true)
    expect((await me(clients[1] as CookieClient)).user).toBeNull()
    expect((await me(clients[0] as CookieClient)).user).toBe('kim')
    expect(await sessions.listUserSessions('kim')).toHaveLength(3)

    // Destroy all but the current device, then all.
    const laptopHandle = (await me(clients[0] as CookieClient)).handle as string
    expect(await sessions.destroyAllUserSessions('kim', { except: laptopHandle })).toBe(2)
    expect((await me(clients[0] as CookieClient)).user).toBe('kim')
    expect((await me(clients[2] as CookieClient)).user).toBeNull()
    expect(await sessions.destroyAllUserSessions('kim')).toBe(1)
    for (const c of clients) expect((await me(c)).user).toBeNull()
    expect(await sessions.listUserSessions('kim')).toEqual([])
    expect((await meOther(others[0] as CookieClient)).user).toBe('lee')
  })
})

describe('Redis Cluster', () => {
  it("keeps a user's sessions and index in one slot", async () => {
    const keyPrefix = randomPrefix()
    const sessions = makeSessions(clusterClient, { keyPrefix })
    await loginDevices(sessions, 'node', 'max', ['a', 'b', 'c'])
    const keys: string[] = []
    for (const node of clusterClient.nodes('master')) keys.push(...(await node.keys('*')))
    const mine = keys.filter((key) => key.startsWith(keyPrefix))
    const slots = new Set(await Promise.all(mine.map((key) => clusterClient.cluster('KEYSLOT', key))))
    expect(mine.length).toBe(4) // 3 sessions + the index
    expect(slots.size).toBe(1)
  })
})
