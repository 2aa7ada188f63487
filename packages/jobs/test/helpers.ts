import { randomBytes } from 'node:crypto'
import { type RedisServer, startRedis } from '@scale/testkit'
import { Redis } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'

/** A queue name no other test (or engineer running tests at the same time) uses. */
export function uniqueQueue(base: string): string {
  return `${base}-${randomBytes(4).toString('hex')}`
}

/** A client suitable for producers and workers alike (BullMQ workers need maxRetriesPerRequest: null). */
export function connect(port: number): Redis {
  const redis = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: null })
  redis.on('error', () => {})
  return redis
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * A Redis server from the test kit for the calling file's tests: started before them, disposed of
 * after them, with a client from {@link connect}. Read `env.redis` / `env.server` inside tests.
 */
export function useRedis(): { readonly server: RedisServer; readonly redis: Redis } {
  const env = {} as { server: RedisServer; redis: Redis }
  beforeAll(async () => {
    env.server = await startRedis()
    env.redis = connect(env.server.port)
  })
  afterAll(async () => {
    env.redis?.disconnect()
    await env.server?.dispose()
  })
  return env
}
