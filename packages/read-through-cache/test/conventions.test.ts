import { randomBytes } from 'node:crypto'
import { type RedisServer, startRedis } from '@scale/testkit'
import { Redis } from 'ioredis'
import * as promClient from 'prom-client'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  CacheOptionsError,
  createReadThroughCache,
  type Logger,
  promClientMetrics,
  ReadThroughCache,
  type ReadThroughCacheOptions,
} from '../src/index.js'
import { settled } from '../src/read-through-cache.js'

const prefixOf = () => `t${randomBytes(4).toString('hex')}:`

describe('the shape every @scale package shares (CONTRIBUTING.md)', () => {
  let server: RedisServer
  const clients: Redis[] = []
  const caches: ReadThroughCache[] = []
  const client = () => {
    const c = new Redis({ host: '127.0.0.1', port: server.port })
    c.on('error', () => {})
    clients.push(c)
    return c
  }
  const cache = (options: Omit<ReadThroughCacheOptions, 'redis'>) => {
    const c = createReadThroughCache({ redis: client(), commandTimeoutMs: 5_000, ...options })
    caches.push(c)
    return c
  }

  beforeAll(async () => {
    server = await startRedis()
  })
  afterEach(async () => {
    await Promise.all(caches.splice(0).map((c) => c.close()))
  })
  afterAll(async () => {
    for (const c of clients) c.disconnect()
    await server?.dispose()
  })

  it('keyPrefix namespaces every Redis key; prefix (deprecated) still does the same', async () => {
    const viaKeyPrefix = prefixOf()
    const viaPrefix = prefixOf()
    const a = cache({ keyPrefix: viaKeyPrefix, local: false })
    const b = cache({ prefix: viaPrefix, local: false })
    await a.set('k', 1)
    await b.set('k', 2)
    const redis = client()
    expect(await redis.keys(`${viaKeyPrefix}*`)).toHaveLength(1)
    expect(await redis.keys(`${viaPrefix}*`)).toHaveLength(1)
    expect(await a.get('k')).toBe(1)
    expect(await b.get('k')).toBe(2)
  })

  it('keyPrefix and a different prefix together: CacheOptionsError naming keyPrefix, from the factory', () => {
    const error = (() => {
      try {
        cache({ keyPrefix: 'a:', prefix: 'b:' })
      } catch (e) {
        return e
      }
    })()
    expect(error).toBeInstanceOf(CacheOptionsError)
    expect((error as CacheOptionsError).code).toBe('E_CACHE_INVALID_OPTIONS')
    expect((error as CacheOptionsError).context.option).toBe('keyPrefix')
    expect(() => cache({ keyPrefix: 'x{y}:' })).toThrow(CacheOptionsError)
  })

  it('createReadThroughCache returns the ReadThroughCache interface; new ReadThroughCache() still works (deprecated)', async () => {
    const keyPrefix = prefixOf()
    const made = cache({ keyPrefix })
    const legacy = new ReadThroughCache({ redis: client(), keyPrefix, commandTimeoutMs: 5_000 })
    caches.push(legacy)
    expect(legacy).toBeInstanceOf(ReadThroughCache)
    expect(made).toBeInstanceOf(ReadThroughCache)
    await made.set('k', 'shared')
    expect(await legacy.get('k')).toBe('shared')
    // The interface is the whole public surface: no internals on the object.
    const methods = Object.getOwnPropertyNames(Object.getPrototypeOf(made)).filter(
      (name) => name !== 'constructor',
    )
    expect(methods.sort()).toEqual(
      [
        'clear',
        'close',
        'delete',
        'deleteByTag',
        'deleteMany',
        'expire',
        'get',
        'getOrLoad',
        'getOrLoadMany',
        'has',
        'mget',
        'mset',
        'on',
        'ready',
        'set',
        'stats',
      ].sort(),
    )
  })

  it('promClientMetrics feeds prom-client counters with the convention names and labels', async () => {
    const registry = new promClient.Registry()
    const a = cache({
      keyPrefix: prefixOf(),
      metrics: promClientMetrics({ promClient, registers: [registry] }),
    })
    await a.ready()
    expect(await a.getOrLoad('k', () => 'v')).toBe('v')
    await settled(a)
    expect(await a.getOrLoad('k', () => 'wrong')).toBe('v')
    const text = await registry.metrics()
    expect(text).toMatch(/^scale_read_through_cache_loads_total 1$/m)
    expect(text).toMatch(/^scale_read_through_cache_hits_total\{tier="local"\} 1$/m)
  })

  it('a pino-shaped logger gets the warnings (and a throwing metrics hook is logged once)', async () => {
    const warned: { object: Record<string, unknown>; message: string }[] = []
    const logger: Logger = {
      info: () => {},
      warn: (object, message) => warned.push({ object, message }),
      error: () => {},
    }
    const a = cache({
      keyPrefix: prefixOf(),
      logger,
      metrics: {
        increment() {
          throw new Error('statsd is down')
        },
        observe() {},
      },
    })
    expect(await a.getOrLoad('k', () => 'v')).toBe('v')
    expect(await a.getOrLoad('k', () => 'v')).toBe('v')
    const hookWarnings = warned.filter((w) => w.message.includes('metrics hook'))
    expect(hookWarnings).toHaveLength(1)
    expect(hookWarnings[0]?.message).toMatch(/^\[@scale\/read-through-cache\]/)
    expect(hookWarnings[0]?.object.err).toBeInstanceOf(Error)
  })
})
