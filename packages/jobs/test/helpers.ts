import { randomBytes } from 'node:crypto'
import { type RedisServer, startRedis } from '@scale/testkit'
import { Redis } from 'ioredis'
import { Redis as Redis6 } from 'ioredis6'
import { afterAll, beforeAll } from 'vitest'

/**
 * `SCALE_JOBS_IOREDIS=6` runs the suite with ioredis 6 clients (the peer range covers 5 and 6):
 * every client made here is then a v6 one, and the package works on the user's instances.
 */
const useIoredis6 = process.env.SCALE_JOBS_IOREDIS === '6'

/** A queue name no other test (or engineer running tests at the same time) uses. */
export function uniqueQueue(base: string): string {
  return `${base}-${randomBytes(4).toString('hex')}`
}

/** A client suitable for producers and workers alike (BullMQ workers need maxRetriesPerRequest: null). */
export function connect(port: number): Redis {
  const options = { host: '127.0.0.1', port, maxRetriesPerRequest: null }
  // The two majors' classes differ only in private fields; the package accepts either.
  const redis = useIoredis6 ? (new Redis6(options) as unknown as Redis) : new Redis(options)
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
