import { startRedisCluster, waitFor } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import { Cluster, Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { createWriteCoalescer } from '../src/index.js'

const N = 32
const env = useRedis()
const clients: (Redis | Cluster)[] = []
const prefix = `${uniqueName('t')}:`

afterAll(async () => {
  for (const client of clients) client.disconnect()
})

/** An ioredis client that fails fast in tests instead of retrying for seconds. */
function client(options: { lazyConnect?: boolean } = {}): Redis {
  const redis = new Redis({ host: '127.0.0.1', port: env.server.port, maxRetriesPerRequest: 1, ...options })
  redis.on('error', () => {})
  clients.push(redis)
  return redis
}

/** A connected client whose socket writes (syscall-level `_write`/`_writev` calls) are counted. */
async function countingClient(): Promise<{ redis: Redis; writes: () => number }> {
  const redis = client()
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

/** N SETs, then N GETs started in one turn, each preceded by `hold()`; checks every reply. */
async function concurrentCommands(redis: Redis, hold: () => void): Promise<void> {
  await Promise.all(
    Array.from({ length: N }, (_, i) => {
      hold()
      return redis.set(`${prefix}k${i}`, String(i))
    }),
  )
  const values = await Promise.all(
    Array.from({ length: N }, (_, i) => {
      hold()
      return redis.get(`${prefix}k${i}`)
    }),
  )
  expect(values).toEqual(Array.from({ length: N }, (_, i) => String(i)))
}

describe('createWriteCoalescer', () => {
  it('the commands of one event-loop turn leave in one socket write; the socket is uncorked after', async () => {
    const { redis, writes } = await countingClient()
    const coalescer = createWriteCoalescer(redis)
    await env.server.command('config', 'resetstat')
    const before = writes()
    await concurrentCommands(redis, () => coalescer.hold())
    const coalesced = writes() - before
    const counts = await env.server.commandCounts()
    // Every command reached Redis, once.
    expect(counts.set).toBe(N)
    expect(counts.get).toBe(N)
    // The N SETs share one write, and so do the N GETs that follow their replies.
    expect(coalesced).toBeLessThanOrEqual(2)
    expect(redis.stream.writableCorked).toBe(0)
  })

  it('control: with enabled: false, every command is its own write', async () => {
    const { redis, writes } = await countingClient()
    const coalescer = createWriteCoalescer(redis, { enabled: false })
    const before = writes()
    await concurrentCommands(redis, () => coalescer.hold())
    expect(writes() - before).toBeGreaterThanOrEqual(2 * N)
    expect(redis.stream.writableCorked).toBe(0)
  })

  it('commands of separate turns are not held together', async () => {
    const { redis, writes } = await countingClient()
    const coalescer = createWriteCoalescer(redis)
    const before = writes()
    for (let i = 0; i < 4; i++) {
      coalescer.hold()
      await redis.set(`${prefix}turn`, String(i))
    }
    expect(writes() - before).toBe(4)
    expect(await redis.get(`${prefix}turn`)).toBe('3')
  })

  it('release() sends what is held at once; commands held after it leave together at the end of the turn', async () => {
    const { redis, writes } = await countingClient()
    const coalescer = createWriteCoalescer(redis)
    const before = writes()
    coalescer.hold()
    const first = redis.set(`${prefix}released`, 'a')
    coalescer.release()
    // Already on the socket: written before this turn ends, and the socket is no longer corked.
    expect(writes() - before).toBe(1)
    expect(redis.stream.writableCorked).toBe(0)
    const later = Array.from({ length: 4 }, () => {
      coalescer.hold()
      return redis.get(`${prefix}released`)
    })
    expect(redis.stream.writableCorked).toBe(1)
    expect(writes() - before).toBe(1)
    await first
    expect(await Promise.all(later)).toEqual(['a', 'a', 'a', 'a'])
    expect(writes() - before).toBe(2)
    coalescer.release() // nothing held: a no-op
    expect(redis.stream.writableCorked).toBe(0)
  })

  it('does nothing before the client is ready, and corks once it is', async () => {
    const redis = client({ lazyConnect: true })
    const coalescer = createWriteCoalescer(redis)
    expect(redis.status).toBe('wait')
    coalescer.hold() // no socket yet: a no-op, not an error
    await redis.connect()
    coalescer.hold()
    expect(redis.stream.writableCorked).toBe(1)
    expect(await redis.ping()).toBe('PONG')
    expect(redis.stream.writableCorked).toBe(0)
  })

  it('leaves a Cluster alone: no node socket is corked, and the commands of the turn get their replies', async () => {
    const redisCluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 })
    try {
      const cluster = new Cluster(redisCluster.startupNodes, { redisOptions: { maxRetriesPerRequest: 1 } })
      cluster.on('error', () => {})
      clients.push(cluster)
      const keys = Array.from({ length: N }, (_, i) => `${prefix}c${i}`)
      await Promise.all(keys.map((k) => cluster.set(k, k))) // connects every master
      const nodes = cluster.nodes('master')
      expect(nodes).toHaveLength(3)
      const coalescer = createWriteCoalescer(cluster)
      const replies = Promise.all(
        keys.map((k) => {
          coalescer.hold()
          return cluster.get(k)
        }),
      )
      for (const node of nodes) expect(node.stream.writableCorked).toBe(0)
      expect(await replies).toEqual(keys)
    } finally {
      await redisCluster.stop()
    }
  })

  it('a reconnect in between uncorks the socket that was corked, and the new socket is corked anew', async () => {
    const redis = client()
    await redis.ping()
    const coalescer = createWriteCoalescer(redis)
    const first = redis.stream
    coalescer.hold()
    expect(first.writableCorked).toBe(1)
    redis.disconnect(true)
    await waitFor('reconnected', async () => redis.status === 'ready' && redis.stream !== first, {
      timeoutMs: 30_000,
      intervalMs: 20,
    })
    expect(first.writableCorked).toBe(0)
    coalescer.hold()
    expect(redis.stream.writableCorked).toBe(1)
    expect(await redis.ping()).toBe('PONG')
    expect(redis.stream.writableCorked).toBe(0)
  })
})
