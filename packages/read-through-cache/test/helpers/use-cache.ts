import type { RedisServer, StartRedisOptions } from '@scale/testkit'
import { uniqueName, useRedis } from '@scale/testkit/vitest'
import { Redis, type RedisOptions } from 'ioredis'
import { afterAll, afterEach, beforeAll, expect } from 'vitest'
import {
  createReadThroughCache,
  type ReadThroughCache,
  type ReadThroughCacheOptions,
} from '../../src/index.js'

/** A key prefix no other test uses. */
export const prefixOf = () => `${uniqueName('t')}:`

/** A promise with its resolve, to hold a loader until the test lets it go. */
export function deferred<T = void>() {
  let resolve: (value: T) => void = () => {}
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

export interface CacheFixture {
  /** The suite's Redis (testkit, free port). */
  readonly server: RedisServer
  /** A new client of the suite's Redis, disconnected after the suite. */
  client(options?: RedisOptions): Redis
  /** A new cache on its own client (5 s command timeout unless given), closed after each test. */
  cache(options: Partial<ReadThroughCacheOptions>): ReadThroughCache
}

/**
 * The setup every Redis-backed test file repeats: one testkit Redis for the file (`useRedis()`), caches closed
 * after each test, clients and server stopped after the file, and no unhandled rejection allowed.
 */
export function useCache(server: StartRedisOptions = {}): CacheFixture {
  // Before this file's own hooks: its afterAll (closing the clients) then runs before the server stops.
  const env = useRedis(server)
  const clients: Redis[] = []
  const caches: ReadThroughCache[] = []
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown) => unhandled.push(reason)
  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled)
  })
  afterEach(async () => {
    await Promise.all(caches.splice(0).map((c) => c.close()))
  })
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled)
    for (const c of clients) c.disconnect()
    expect(unhandled).toEqual([])
  })
  const fixture: CacheFixture = {
    get server() {
      return env.server
    },
    client: (options = {}) => {
      const c = new Redis({ host: '127.0.0.1', port: fixture.server.port, ...options })
      c.on('error', () => {})
      clients.push(c)
      return c
    },
    cache: (options) => {
      // Two caches of one test share data by passing the same prefix (old name accepted).
      const { prefix, ...rest } = options
      const c = createReadThroughCache({
        redis: fixture.client(),
        commandTimeoutMs: 5_000,
        ...rest,
        keyPrefix: options.keyPrefix ?? prefix ?? prefixOf(),
      })
      caches.push(c)
      return c
    },
  }
  return fixture
}
