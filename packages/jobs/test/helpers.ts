import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'

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
