import { waitFor } from '@scale/testkit'
import { describe, expect, it } from 'vitest'
import {
  CacheClosedError,
  type CacheEvent,
  CacheKeyError,
  CacheOptionsError,
  CacheSerializationError,
  CacheUnavailableError,
} from '../src/index.js'
import { KeyLayout } from '../src/key-layout.js'
import { hasLocal, settled } from '../src/read-through-cache.js'
import { prefixOf, useCache } from './helpers/use-cache.js'

describe('per-key events, mget and mset', () => {
  const { cache, client } = useCache()

  it('on(): hit, miss, set, delete, stale and error events, for every key or one key; off() stops them', async () => {
    const a = cache({ staleWhileRevalidateMs: 60_000, gracePeriodMs: 60_000 })
    await a.ready()
    const all: CacheEvent[] = []
    const forOne: CacheEvent[] = []
    const offs = (['hit', 'miss', 'set', 'delete', 'stale', 'error'] as const).map((type) =>
      a.on(type, (event) => all.push(event)),
    )
    const offOne = a.on('miss', 'k1', (event) => forOne.push(event))
    await a.getOrLoad('k1', () => 'v1') // miss, then set (load)
    await settled(a)
    await a.getOrLoad('k1', () => 'never') // local hit
    await a.getOrLoad('k2', () => 'v2') // a miss of another key: not in forOne
    await settled(a)
    await a.set('k3', 'v3')
    await a.delete('k3')
    // A value past its freshness: served stale while the refresh fails (error).
    await a.getOrLoad('old', () => 'old', { ttlMs: 20, jitter: 0 })
    await settled(a)
    await new Promise((resolve) => setTimeout(resolve, 40))
    const served = await a.getOrLoad(
      'old',
      () => {
        throw new Error('db down')
      },
      { ttlMs: 20, jitter: 0 },
    )
    expect(served).toBe('old')
    await settled(a)
    const seen = all.map((event) => `${event.type}:${event.key}`)
    expect(seen).toEqual(
      expect.arrayContaining([
        'miss:k1',
        'set:k1',
        'hit:k1',
        'miss:k2',
        'set:k3',
        'delete:k3',
        'stale:old',
        'error:old',
      ]),
    )
    expect(all.find((event) => event.type === 'hit' && event.key === 'k1')?.tier).toBe('local')
    expect(all.find((event) => event.type === 'set' && event.key === 'k1')?.source).toBe('load')
    expect(all.find((event) => event.type === 'set' && event.key === 'k3')?.source).toBe('set')
    expect(all.find((event) => event.type === 'error')?.error).toMatchObject({ message: 'db down' })
    expect(forOne.map((event) => event.key)).toEqual(['k1'])

    for (const off of [...offs, offOne]) off()
    const before = all.length
    await a.getOrLoad('k4', () => 'v4')
    await settled(a)
    expect(all.length).toBe(before)
  })

  it('a throwing listener never breaks the read; bad arguments to on() are typed errors', async () => {
    const a = cache({})
    a.on('miss', () => {
      throw new Error('listener bug')
    })
    expect(await a.getOrLoad('k', () => 'v')).toBe('v')
    expect(() => a.on('nope' as 'hit', () => {})).toThrow(CacheOptionsError)
    expect(() => a.on('hit', '', () => {})).toThrow(CacheKeyError)
    expect(() => a.on('hit', 'k', undefined as unknown as () => void)).toThrow(CacheOptionsError)
    await a.close()
    expect(() => a.on('hit', () => {})).toThrow(CacheClosedError)
  })

  it('an async listener that rejects is logged like a throw, never an unhandled rejection', async () => {
    const warnings: string[] = []
    const logger = { info() {}, warn: (_: object, message: string) => warnings.push(message), error() {} }
    const a = cache({ logger })
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      a.on('set', async () => {
        throw new Error('async listener bug')
      })
      await a.set('k', 'v')
      expect(await a.getOrLoad('k2', () => 'v2')).toBe('v2')
      await settled(a)
      await new Promise((resolve) => setTimeout(resolve, 50))
      expect(unhandled).toEqual([])
      expect(warnings.filter((w) => w.includes('listener threw'))).toHaveLength(1)
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it('tags that are not an array: CacheOptionsError before anything is written or queued', async () => {
    const a = cache({})
    await a.ready()
    const asTags = 'team:7' as unknown as string[]
    await expect(a.set('k', 'v', { tags: asTags })).rejects.toBeInstanceOf(CacheOptionsError)
    await expect(a.mset([{ key: 'm', value: 1, options: { tags: asTags } }])).rejects.toBeInstanceOf(
      CacheOptionsError,
    )
    await expect(a.getOrLoad('g', () => 1, { tags: asTags })).rejects.toBeInstanceOf(CacheOptionsError)
    expect(await a.mget(['k', 'm', 'g'], { local: false })).toEqual([undefined, undefined, undefined])
    expect(a.stats().pendingInvalidations).toBe(0)
    expect(a.stats().redisErrors).toBe(0)
  })

  it('mget: local hits, one MGET for the rest, undefined for missing keys; never loads', async () => {
    const keyPrefix = prefixOf()
    const a = cache({ keyPrefix })
    const b = cache({ keyPrefix })
    await Promise.all([a.ready(), b.ready()])
    await a.set('x', { n: 1 })
    await a.set('y', new Date(0))
    const events: string[] = []
    b.on('hit', (event) => events.push(`${event.tier}:${event.key}`))
    b.on('miss', (event) => events.push(`miss:${event.key}`))
    expect(await b.mget(['x', 'missing', 'y', 'x'])).toEqual([{ n: 1 }, undefined, new Date(0), { n: 1 }])
    expect(events.sort()).toEqual(['miss:missing', 'redis:x', 'redis:y'])
    // The Redis hits fill b's local tier (once a's invalidations of its own sets have arrived):
    // the next mget needs no Redis for them.
    await waitFor('x and y in b', async () => {
      await b.mget(['x', 'y'])
      return hasLocal(b, 'x') && hasLocal(b, 'y')
    })
    events.length = 0
    expect(await b.mget(['x', 'y'])).toEqual([{ n: 1 }, new Date(0)])
    expect(events.sort()).toEqual(['local:x', 'local:y'])
    await expect(b.mget(['ok', ''])).rejects.toBeInstanceOf(CacheKeyError)
  })

  it('mset: one call writes every entry with its own TTL and tags, voids loads in flight, and drops other local copies', async () => {
    const keyPrefix = prefixOf()
    const a = cache({ keyPrefix })
    const b = cache({ keyPrefix })
    await Promise.all([a.ready(), b.ready()])
    const inspect = client()
    const layout = new KeyLayout(keyPrefix)
    await b.getOrLoad('p', () => 'old p')
    await settled(b)
    expect(hasLocal(b, 'p')).toBe(true)
    // A load in flight for q (it read the old row): mset must win over it.
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const loading = a.getOrLoad('q', async () => {
      await held
      return 'stale q'
    })
    await waitFor('the lease of q', async () => (await inspect.exists(layout.entry('q').lease)) === 1)
    await a.mset([
      { key: 'p', value: 'new p' },
      { key: 'q', value: 'new q', options: { ttlMs: 5_000, tags: ['team'] } },
      { key: 'p', value: 'newest p' },
    ])
    release()
    expect(await loading).toBe('stale q')
    await settled(a)
    expect(await inspect.pttl(layout.entry('q').value)).toBeLessThanOrEqual(5_000)
    await waitFor('p dropped from b', () => !hasLocal(b, 'p'))
    expect(await b.mget(['p', 'q'])).toEqual(['newest p', 'new q'])
    await a.deleteByTag('team')
    expect(await inspect.exists(layout.entry('q').value)).toBe(0)
    await waitFor('q dropped from b', async () => (await b.get('q')) === undefined)
  })

  it('mset: a value that cannot be serialized writes nothing; Redis unreachable queues every key', async () => {
    const a = cache({ commandTimeoutMs: 200 })
    await a.ready()
    await expect(
      a.mset<unknown>([
        { key: 'fine', value: 1 },
        { key: 'plain', value: { self: undefined } },
      ]),
    ).resolves.toBeUndefined()
    const cyclic: { self?: unknown } = {}
    cyclic.self = cyclic
    await expect(
      a.mset<unknown>([
        { key: 'ok', value: 1 },
        { key: 'cycle', value: cyclic },
      ]),
    ).rejects.toBeInstanceOf(CacheSerializationError)
    expect(await a.mget(['ok', 'cycle'])).toEqual([undefined, undefined])
    await expect(a.mset('nope' as never)).rejects.toBeInstanceOf(CacheOptionsError)
  })

  it('mset of 50,000 entries on a healthy Redis: all written, no command timed out, circuit closed', async () => {
    // Sent at once, the last scripts waited behind the first ones for longer than commandTimeoutMs:
    // the call failed, the circuit opened and every key was queued for invalidation. The timeout is
    // twenty times what one slice of 1,000 takes on this machine now (at least 200 ms): below what
    // 50,000 at once take (fifty slices' work), far above one slice, however busy the machine is.
    const started = performance.now()
    await cache({}).mset(Array.from({ length: 1_000 }, (_, i) => ({ key: `warm:${i}`, value: i })))
    const commandTimeoutMs = Math.max(200, Math.ceil(20 * (performance.now() - started)))
    const prefix = prefixOf()
    const a = cache({ prefix, commandTimeoutMs })
    await a.ready()
    const keys = Array.from({ length: 50_000 }, (_, i) => `big:${i}`)
    await a.mset(keys.map((key, i) => ({ key, value: i })))
    const stats = a.stats()
    expect(stats.redisErrors).toBe(0)
    expect(stats.circuit).toBe('closed')
    expect(stats.pendingInvalidations).toBe(0)
    // Read back with the default timeout: one MGET of 50,000 keys may itself pass 200 ms on a busy machine.
    const read = await cache({ prefix }).mget<number>(keys, { local: false })
    expect(read.filter((value, i) => value !== i)).toEqual([])
  })

  it('close() waits for writes in flight: a client quit right after close() loses none of them', async () => {
    const redis = client()
    const prefix = prefixOf()
    const a = cache({ redis, keyPrefix: prefix })
    await a.ready()
    const keys = Array.from({ length: 5_000 }, (_, i) => `w:${i}`)
    const writes = [
      a.mset(keys.map((key, i) => ({ key, value: i }))),
      a.set('one', 1, { tags: ['t1', 't2'] }),
      a.deleteByTag('t3'),
    ]
    await a.close()
    await redis.quit()
    expect(await Promise.allSettled(writes)).toEqual(
      writes.map(() => ({ status: 'fulfilled', value: undefined })),
    )
    const reader = cache({ keyPrefix: prefix })
    expect(await reader.mget([...keys, 'one'], { local: false })).toEqual([...keys.map((_, i) => i), 1])
  })

  it('mset with Redis unreachable: CacheUnavailableError with every key queued for replay', async () => {
    const dead = cache({
      redis: client({ port: 1, lazyConnect: true, enableOfflineQueue: false }),
      commandTimeoutMs: 200,
    })
    const error = await dead
      .mset([
        { key: 'a', value: 1 },
        { key: 'b', value: 2 },
      ])
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(CacheUnavailableError)
    expect((error as CacheUnavailableError).context).toMatchObject({
      keys: ['a', 'b'],
      queuedForReplay: true,
    })
    expect(dead.stats().pendingInvalidations).toBe(2)
  })
})
