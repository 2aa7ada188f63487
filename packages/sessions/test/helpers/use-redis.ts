import { type RedisServer, startRedis } from '@scale/testkit'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import { randomPrefix, redisClient } from './setup.js'

/** A test file's Redis: a real testkit server on a free loopback port and a client to it. */
export interface TestRedis {
  /** The testkit server (kill, pause, command counts). */
  readonly server: RedisServer
  /** An ioredis client to it that fails fast instead of retrying for seconds. */
  readonly redis: Redis
  /** A key prefix no other test uses. */
  prefix(): string
}

/**
 * Starts a Redis for the calling test file (`beforeAll`) and stops it with its client after the
 * file's own `afterAll` hooks (vitest runs after-hooks in reverse order). Never the machine's
 * own Redis: the testkit picks a free port and a temp dir.
 */
export function useRedis(): TestRedis {
  let server: RedisServer | undefined
  let redis: Redis | undefined
  beforeAll(async () => {
    server = await startRedis()
    redis = redisClient(server.port)
  })
  afterAll(async () => {
    redis?.disconnect()
    await server?.dispose()
  })
  return {
    get server() {
      if (!server) throw new Error('useRedis(): the server starts in beforeAll; use it inside a test')
      return server
    },
    get redis() {
      if (!redis) throw new Error('useRedis(): the client starts in beforeAll; use it inside a test')
      return redis
    },
    prefix: randomPrefix,
  }
}
