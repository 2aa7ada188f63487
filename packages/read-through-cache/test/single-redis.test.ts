import { startRedis } from '@scale/testkit'
import { defineCacheBehaviour } from './helpers/behaviour-suite.js'

defineCacheBehaviour('a single Redis', async () => {
  const redis = await startRedis()
  return {
    target: { kind: 'single', port: redis.port },
    kill: () => redis.kill(),
    start: () => redis.start(),
    stop: () => redis.dispose(),
  }
})
