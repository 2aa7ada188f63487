import { type RedisServer, startRedis } from '@scale/testkit'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { createMemorySessionStore } from '../src/index.js'
import { RedisSessionStore } from '../src/redis-session-store.js'
import { describeSessionStoreConformance } from '../src/testing.js'
import { randomPrefix, redisClient } from './helpers/setup.js'

let redisServer: RedisServer
let redis: Redis

beforeAll(async () => {
  redisServer = await startRedis()
  redis = redisClient(redisServer.port)
})

afterAll(async () => {
  redis.disconnect()
  await redisServer.dispose()
})

describeSessionStoreConformance(
  'Redis',
  () =>
    new RedisSessionStore({
      redis,
      keyPrefix: randomPrefix(),
      commandTimeoutMs: 2_000,
      absoluteTimeoutMs: 86_400_000,
      coalesceWrites: true,
      circuitBreaker: false,
    }),
  { describe, it },
)

describeSessionStoreConformance('memory', () => createMemorySessionStore(), { describe, it })
