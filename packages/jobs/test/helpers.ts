import type { RedisServer } from '@scale/testkit'
import { Redis } from 'ioredis'
import { Redis as Redis6 } from 'ioredis6'

/**
 * `SCALE_JOBS_IOREDIS=6` runs the suite with ioredis 6 clients (the peer range covers 5 and 6):
 * every client made here is then a v6 one, and the package works on the user's instances.
 */
const useIoredis6 = process.env.SCALE_JOBS_IOREDIS === '6'

/** A client suitable for producers and workers alike (BullMQ workers need maxRetriesPerRequest: null). */
export function connect(port: number): Redis {
  const options = { host: '127.0.0.1', port, maxRetriesPerRequest: null }
  // The two majors' classes differ only in private fields; the package accepts either.
  const redis = useIoredis6 ? (new Redis6(options) as unknown as Redis) : new Redis(options)
  redis.on('error', () => {})
  return redis
}

/** {@link connect} for `useRedis({ connect: jobsClient })` from `@scale/testkit/vitest`. */
export const jobsClient = (server: RedisServer): Redis => connect(server.port)

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
