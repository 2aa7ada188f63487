import { type TestRedis as KitRedis, useRedis as useKitRedis } from '@scale/testkit/vitest'
import type { Redis } from 'ioredis'
import { randomPrefix, redisClient } from './setup.js'

/** A test file's Redis (the testkit's, on a free loopback port) plus a fresh key prefix per call. */
export interface TestRedis extends KitRedis<Redis> {
  /** A key prefix no other test uses. */
  prefix(): string
}

/** `useRedis()` of `@scale/testkit/vitest` with the sessions tests' fail-fast client. */
export function useRedis(): TestRedis {
  const kit = useKitRedis({ connect: (server) => redisClient(server.port) })
  return {
    get server() {
      return kit.server
    },
    get redis() {
      return kit.redis
    },
    prefix: randomPrefix,
  }
}
