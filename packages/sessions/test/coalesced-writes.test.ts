import { type RedisServer, startRedis } from '@scale/testkit'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Sessions } from '../src/index.js'
import type { Data } from './helpers/app-routes.js'
import { resetCounts, sessionCommandCounts } from './helpers/redis-writes.js'
import { makeSessions, redisClient } from './helpers/setup.js'

const N = 32
let redisServer: RedisServer
const clients: Redis[] = []

beforeAll(async () => {
  redisServer = await startRedis()
})

afterAll(async () => {
  for (const client of clients) client.disconnect()
  await redisServer.dispose()
})

/** A connected client whose socket writes (syscall-level `_write`/`_writev` calls) are counted. */
async function countingClient(): Promise<{ redis: Redis; writes: () => number }> {
  const redis = redisClient(redisServer.port)
  clients.push(redis)
  await redis.ping()
  const stream = redis.stream as unknown as Record<string, ((...args: unknown[]) => unknown) | undefined>
  let writes = 0
  for (const method of ['_write', '_writev']) {
    const original = stream[method]?.bind(stream)
    if (original)
      stream[method] = (...args: unknown[]) => {
        writes++
        return original(...args)
      }
  }
  return { redis, writes: () => writes }
}

/** N sessions with a stored field, then N loads + changes + commits started in one turn. */
async function concurrentRequests(sessions: Sessions<Data>): Promise<void> {
  const cookies: string[] = []
  for (let i = 0; i < N; i++) {
    const session = await sessions.load({})
    session.set('n', i)
    const { setCookie } = await sessions.commit(session)
    cookies.push((setCookie as string).split(';')[0] as string)
  }
  await Promise.all(
    cookies.map(async (cookie, i) => {
      const session = await sessions.load({ cookie })
      expect(session.get('n')).toBe(i)
      session.set('n', i + 1000)
      await sessions.commit(session)
    }),
  )
}

describe('coalesced writes', () => {
  it('the commands of one event-loop turn leave in one socket write; the socket is uncorked after', async () => {
    const { redis, writes } = await countingClient()
    const sessions = makeSessions(redis)
    await concurrentRequests(sessions) // warm: scripts cached, nothing lazy left
    const before = writes()
    await resetCounts(redisServer)
    await concurrentRequests(sessions)
    const counts = await sessionCommandCounts(redisServer)
    // 2N creations, N loads, N updates: 4N commands sent in far fewer writes.
    expect(counts.evalsha).toBe(2 * N)
    expect(counts.hgetall).toBe(N)
    const coalesced = writes() - before
    console.log(`${4 * N} commands in ${coalesced} socket writes`)
    // The creations run one after another (N writes); the N loads share one write, and so do the
    // N commits that follow their replies.
    expect(coalesced).toBeLessThanOrEqual(N + 6)
    expect(redis.stream.writableCorked).toBe(0)
  })

  it('control: with coalesceWrites off, every command is its own write', async () => {
    const { redis, writes } = await countingClient()
    const sessions = makeSessions(redis, { coalesceWrites: false })
    await concurrentRequests(sessions)
    const before = writes()
    await concurrentRequests(sessions)
    expect(writes() - before).toBeGreaterThanOrEqual(3 * N)
  })
})
