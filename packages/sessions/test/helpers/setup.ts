import { uniqueName } from '@scale/testkit/vitest'
import { Redis } from 'ioredis'
import { createSessions, type Sessions, type SessionsOptions } from '../../src/index.js'
import type { Data } from './app-routes.js'

export const SECRET = 'test-secret-0123456789-0123456789-abcdef'

export function randomPrefix(): string {
  return `${uniqueName('t')}:`
}

/** An ioredis client that fails fast in tests instead of retrying for seconds. */
export function redisClient(port: number): Redis {
  const redis = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  return redis
}

export function makeSessions(
  redis: NonNullable<SessionsOptions['redis']>,
  options: Partial<SessionsOptions> = {},
): Sessions<Data> {
  return createSessions<Data>({ redis, secrets: [SECRET], keyPrefix: randomPrefix(), ...options })
}
