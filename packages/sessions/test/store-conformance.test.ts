import { describe, it } from 'vitest'
import { createMemorySessionStore } from '../src/index.js'
import { RedisSessionStore } from '../src/redis-session-store.js'
import { describeSessionStoreConformance } from '../src/testing.js'
import { randomPrefix } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()

describeSessionStoreConformance(
  'Redis',
  () =>
    new RedisSessionStore({
      redis: kit.redis,
      keyPrefix: randomPrefix(),
      commandTimeoutMs: 2_000,
      absoluteTimeoutMs: 86_400_000,
      coalesceWrites: true,
      circuitBreaker: false,
    }),
  { describe, it },
)

describeSessionStoreConformance('memory', () => createMemorySessionStore(), { describe, it })
