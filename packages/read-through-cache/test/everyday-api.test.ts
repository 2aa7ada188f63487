import { waitFor } from '@scale/testkit'
import { describe, expect, it } from 'vitest'
import { CacheKeyError, CacheLoaderFailedError, CacheOptionsError } from '../src/index.js'
import { KeyLayout } from '../src/key-layout.js'
import { hasLocal, settled } from '../src/read-through-cache.js'
import { prefixOf, useCache } from './helpers/use-cache.js'

describe('adaptive loaders, forceFresh, has, deleteMany', () => {
  const { cache, client } = useCache()

  it('ctx.setTtl sets the TTL of this entry from what was loaded; a bad TTL fails the load with a typed error', async () => {
    const prefix = prefixOf()
    const a = cache({ prefix, ttlMs: 1_000, jitter: 0 })
    const inspect = client()
    const layout = new KeyLayout(prefix)
    await a.getOrLoad('draft', () => 'draft')
    await a.getOrLoad('published', (ctx) => {
      ctx.setTtl(3_600_000)
      return 'published'
    })
    await settled(a)
    expect(await inspect.pttl(layout.entry('draft').value)).toBeLessThanOrEqual(1_000)
    expect(await inspect.pttl(layout.entry('published').value)).toBeGreaterThan(3_000_000)
    await expect(
      a.getOrLoad('bad', (ctx) => {
        ctx.setTtl(-5)
        return 'x'
      }),
    ).rejects.toBeInstanceOf(CacheOptionsError)
  })

  it('ctx can be destructured: key, signal, setTtl, setTags, skip and fail work unbound', async () => {
    const prefix = prefixOf()
    const a = cache({ prefix, ttlMs: 1_000, jitter: 0 })
    const inspect = client()
    const layout = new KeyLayout(prefix)
    const seen: unknown[] = []
    await a.getOrLoad('d', ({ key, signal, setTtl, setTags }) => {
      seen.push(key, signal instanceof AbortSignal)
      setTtl(3_600_000)
      setTags(['d-tag'])
      return 'd'
    })
    await settled(a)
    expect(seen).toEqual(['d', true])
    expect(await inspect.pttl(layout.entry('d').value)).toBeGreaterThan(3_000_000)
    await a.deleteByTag('d-tag')
    expect(await inspect.exists(layout.entry('d').value)).toBe(0)
    expect(await a.getOrLoad('s', ({ skip }) => skip())).toBeUndefined()
    await expect(a.getOrLoad('f', ({ fail }) => fail('unbound fail'))).rejects.toBeInstanceOf(
      CacheLoaderFailedError,
    )
  })

  it('ctx.skip() answers without caching; ctx.fail() fails the load (stale within grace is served)', async () => {
    const prefix = prefixOf()
    const a = cache({ prefix })
    const inspect = client()
    let calls = 0
    const partial = (ctx: { skip(): undefined }) => {
      calls++
      ctx.skip()
      return { partial: true }
    }
    expect(await a.getOrLoad('p', partial)).toEqual({ partial: true })
    await settled(a)
    expect(await inspect.exists(new KeyLayout(prefix).entry('p').value)).toBe(0)
    expect(await a.getOrLoad('p', partial)).toEqual({ partial: true })
    expect(calls).toBe(2)
    expect(await a.getOrLoad('q', (ctx) => ctx.skip())).toBeUndefined()

    const failed = a.getOrLoad('f', (ctx) => ctx.fail('upstream said 503'))
    await expect(failed).rejects.toThrow('upstream said 503')
    await expect(failed).rejects.toBeInstanceOf(CacheLoaderFailedError)
    const graced = { ttlMs: 100, jitter: 0, gracePeriodMs: 60_000 }
    await a.getOrLoad('g', () => 'v1', graced)
    await settled(a)
    await waitFor('v1 to go stale', async () => (await a.get('g', { local: false })) === undefined)
    expect(await a.getOrLoad('g', (ctx) => ctx.fail(), graced)).toBe('v1')
  })

  it('forceFresh loads over a fresh value, writes it for everyone, and leaves other calls cached', async () => {
    const prefix = prefixOf()
    const a = cache({ prefix })
    const b = cache({ prefix })
    await Promise.all([a.ready(), b.ready()])
    await a.getOrLoad('k', () => 'v1')
    await settled(a)
    expect(await b.getOrLoad('k', () => 'wrong')).toBe('v1')
    expect(await a.getOrLoad('k', () => 'v2', { forceFresh: true })).toBe('v2')
    await settled(a)
    expect(await a.getOrLoad('k', () => 'wrong')).toBe('v2')
    await waitFor(
      'b to drop its copy and read v2',
      async () => (await b.getOrLoad('k', () => 'wrong')) === 'v2',
    )
    expect(a.stats().loads).toBe(2)
  })

  it('checkValue: a cached value that fails the check is loaded again and replaced, locally and in Redis', async () => {
    const prefix = prefixOf()
    const a = cache({ prefix })
    const b = cache({ prefix, local: false })
    await a.ready()
    await a.getOrLoad('u', () => ({ name: 'Ada' })) // the old shape
    await settled(a)
    const isV2 = (value: unknown) => typeof (value as { fullName?: unknown }).fullName === 'string'
    let loads = 0
    const loadV2 = () => {
      loads++
      return { fullName: 'Ada Lovelace' }
    }
    // From the local tier (a), and from Redis (b, which has no local tier).
    expect(await a.getOrLoad('u', loadV2, { checkValue: isV2 })).toEqual({ fullName: 'Ada Lovelace' })
    await settled(a)
    expect(await b.getOrLoad('u', loadV2, { checkValue: isV2 })).toEqual({ fullName: 'Ada Lovelace' })
    expect(loads).toBe(1) // b found the replacement in Redis
    const c = cache({ prefix: prefixOf(), local: false })
    await c.getOrLoad('u', () => ({ name: 'old' }))
    await settled(c)
    expect(await c.getOrLoad('u', loadV2, { checkValue: isV2 })).toEqual({ fullName: 'Ada Lovelace' })
    expect(loads).toBe(2)
    expect(await c.getOrLoad('u', () => ({ name: 'wrong' }))).toEqual({ fullName: 'Ada Lovelace' })
  })

  it('refreshThresholdMs: a hit near expiry answers at once and starts one background refresh fleet-wide', async () => {
    const prefix = prefixOf()
    const a = cache({ prefix })
    const b = cache({ prefix, local: false })
    await a.ready()
    const policy = { ttlMs: 60_000, refreshThresholdMs: 60_000 } // every hit is "near expiry"
    await a.getOrLoad('k', () => 'v1', policy)
    await settled(a)
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    let refreshes = 0
    const refresh = async () => {
      refreshes++
      await released
      return 'v2'
    }
    expect(await a.getOrLoad('k', refresh, policy)).toBe('v1') // answered at once
    await waitFor('the refresh to hold the lease', async () => a.stats().loads === 2)
    expect(await b.getOrLoad('k', refresh, policy)).toBe('v1')
    await settled(b) // b's refresh saw a's lease and gave up
    release()
    await settled(a)
    expect(refreshes).toBe(1)
    expect(await b.getOrLoad('k', () => 'wrong')).toBe('v2')
    await expect(a.getOrLoad('k', () => 'x', { refreshThresholdMs: -1 })).rejects.toBeInstanceOf(
      CacheOptionsError,
    )
  })

  it('expire() marks a key stale everywhere: the next read loads again, the old value still serves within grace', async () => {
    const prefix = prefixOf()
    const a = cache({ prefix, gracePeriodMs: 60_000 })
    const b = cache({ prefix, gracePeriodMs: 60_000 })
    await Promise.all([a.ready(), b.ready()])
    await a.getOrLoad('k', () => 'v1')
    await settled(a)
    expect(await b.getOrLoad('k', () => 'wrong')).toBe('v1')
    await a.expire('k')
    await waitFor('b to drop its fresh copy', async () => !hasLocal(b, 'k'))
    expect(await a.has('k')).toBe(false) // no longer fresh
    // The loader fails: the expired value is still there for the grace period.
    expect(await b.getOrLoad('k', () => Promise.reject(new Error('db down')))).toBe('v1')
    expect(await a.getOrLoad('k', () => 'v2', { forceFresh: true })).toBe('v2')
    await a.expire('never-cached') // nothing to expire: no error
  })

  it('clear() empties this prefix in Redis and in every local tier, and leaves other prefixes alone', async () => {
    const base = prefixOf()
    // A literal '*' in our prefix must not become a wildcard that reaches the other prefix.
    const prefix = `${base}*:`
    const a = cache({ prefix })
    const b = cache({ prefix })
    const other = cache({ prefix: `${base}x:` })
    await Promise.all([a.ready(), b.ready(), other.ready()])
    for (let i = 0; i < 50; i++) await a.getOrLoad(`k${i}`, () => i, { tags: ['t'] })
    await other.getOrLoad('k0', () => 'other')
    await settled(a)
    await settled(other)
    expect(await b.getOrLoad('k1', () => 'wrong')).toBe(1)
    expect(await a.clear()).toBeGreaterThanOrEqual(50)
    await waitFor('b to empty its local tier', async () => !hasLocal(b, 'k1'))
    expect(await b.has('k1')).toBe(false)
    expect(await a.getOrLoad('k2', () => 'reloaded')).toBe('reloaded')
    expect(await other.get('k0', { local: false })).toBe('other')
  })

  it('has() tells whether a fresh value is cached; deleteMany() removes keys everywhere at once', async () => {
    const prefix = prefixOf()
    const a = cache({ prefix })
    const b = cache({ prefix })
    await Promise.all([a.ready(), b.ready()])
    for (const key of ['x', 'y', 'z']) await a.getOrLoad(key, () => key)
    await a.getOrLoad('none', () => undefined, { negativeTtlMs: 60_000 })
    await settled(a)
    for (const key of ['x', 'y', 'z']) await b.getOrLoad(key, () => 'wrong')
    expect(await b.has('x')).toBe(true)
    expect(await b.has('none')).toBe(false) // a cached "not found" is no value
    expect(await b.has('never')).toBe(false)
    await a.deleteMany(['x', 'y', 'x'])
    await waitFor('b to drop x and y', async () => !hasLocal(b, 'x') && !hasLocal(b, 'y'))
    expect(await b.has('x')).toBe(false)
    expect(await b.has('z')).toBe(true)
    await expect(a.deleteMany(['ok', ''])).rejects.toBeInstanceOf(CacheKeyError)
  })
})
