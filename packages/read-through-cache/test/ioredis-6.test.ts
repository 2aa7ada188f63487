import { startRedis } from '@scale/testkit'
import { defineCacheBehaviour } from './helpers/behaviour-suite.js'

// The whole behaviour suite (leases across real processes, stale-set races, invalidations, a
// killed Redis) through ioredis 6, the other supported peer major.
defineCacheBehaviour('a single Redis through ioredis 6', async () => {
  const redis = await startRedis()
  return {
    target: { kind: 'single', port: redis.port, ioredis: 6 },
    kill: () => redis.kill(),
    start: () => redis.start(),
    stop: () => redis.dispose(),
  }
})
