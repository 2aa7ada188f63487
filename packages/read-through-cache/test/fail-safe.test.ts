import { waitFor } from '@scale/testkit'
import { describe, expect, it } from 'vitest'
import { settled } from '../src/read-through-cache.js'
import { deferred, prefixOf, useCache } from './helpers/use-cache.js'

describe('fail-safe and hooks', () => {
  const { cache, client } = useCache()

  it('grace back-off: 20 reads in each of two instances while the loader fails make 1 loader call in all', async () => {
    const prefix = prefixOf()
    const a = cache({ prefix, gracePeriodMs: 60_000 })
    const b = cache({ prefix, gracePeriodMs: 60_000, local: false })
    await a.ready()
    const policy = { ttlMs: 100, jitter: 0 }
    await a.getOrLoad('k', () => 'v1', policy)
    await settled(a)
    await waitFor('v1 to go stale', async () => (await b.get('k')) === undefined)
    let calls = 0
    const failing = async (): Promise<string> => {
      calls++
      throw new Error('database down')
    }
    expect(await a.getOrLoad('k', failing, policy)).toBe('v1')
    await settled(a) // the stale value is stored again, fresh for graceBackoffMs
    for (let i = 0; i < 20; i++) {
      expect(await a.getOrLoad('k', failing, policy)).toBe('v1')
      expect(await b.getOrLoad('k', failing, policy)).toBe('v1')
    }
    expect(calls).toBe(1)
    // Without back-off every read during the failure calls the loader.
    const c = cache({ prefix: prefixOf(), gracePeriodMs: 60_000, graceBackoffMs: 0, local: false })
    await c.getOrLoad('k', () => 'v1', policy)
    await settled(c)
    await waitFor('v1 to go stale', async () => (await c.get('k')) === undefined)
    calls = 0
    for (let i = 0; i < 5; i++) {
      expect(await c.getOrLoad('k', failing, policy)).toBe('v1')
      await settled(c)
    }
    expect(calls).toBe(5)
  })

  it('a metrics hook that throws never breaks a read, and is logged once', async () => {
    const warnings: string[] = []
    const a = cache({
      prefix: prefixOf(),
      metrics: {
        increment: () => {
          throw new Error('statsd is down')
        },
        circuitState: () => {
          throw new Error('gauge is down')
        },
      },
      logger: {
        info: () => {},
        warn: (_object, message) => warnings.push(String(message)),
        error: () => {},
      },
    })
    await a.ready()
    expect(await a.getOrLoad('k', () => 'v')).toBe('v')
    await settled(a)
    expect(await a.getOrLoad('k', () => 'wrong')).toBe('v')
    expect(await a.get('k')).toBe('v')
    expect(a.stats()).toMatchObject({ loads: 1, hitsLocal: 2 })
    expect(warnings.filter((w) => w.includes('metrics hook'))).toHaveLength(1)
  })

  it('local.maxBytes counts keys too: 200 entries with 10 KB keys stay within 1 MiB', async () => {
    const a = cache({ prefix: prefixOf(), local: { maxBytes: 1024 * 1024 } })
    await a.ready()
    for (let i = 0; i < 200; i++) {
      const key = `${i}:`.padEnd(10_000, 'k')
      await a.getOrLoad(key, () => i)
    }
    await settled(a)
    const { localBytes, localEntries, localEvictions } = a.stats()
    expect(localBytes).toBeLessThanOrEqual(1024 * 1024)
    expect(localBytes).toBeGreaterThan(localEntries * 20_000) // each key charged 2 bytes a character
    expect(localEvictions).toBe(200 - localEntries)
    expect(localEntries).toBeLessThan(60)
  })

  it('the default serializer gives every caller the same types: the loading process, another process, the local tier', async () => {
    const prefix = prefixOf()
    const a = cache({ prefix })
    const b = cache({ prefix, local: false })
    await a.ready()
    const value = {
      at: new Date('2024-01-02T03:04:05.000Z'),
      ids: new Set([1, 2]),
      byName: new Map([['ada', 1n]]),
    }
    const fromLoader = await a.getOrLoad('k', () => value)
    await settled(a)
    const fromLocal = await a.getOrLoad('k', () => undefined)
    const fromRedis = await b.getOrLoad('k', () => undefined)
    for (const seen of [fromLoader, fromLocal, fromRedis]) {
      expect(seen).toEqual(value)
      expect(seen?.at).toBeInstanceOf(Date)
      expect(seen?.ids).toBeInstanceOf(Set)
      expect(seen?.byName.get('ada')).toBe(1n)
    }
    expect(a.stats().hitsLocal).toBe(1)
    expect(b.stats().hitsRedis).toBe(1)
  })

  it('ready() connects a lazyConnect client', async () => {
    const redis = client({ lazyConnect: true })
    expect(redis.status).toBe('wait')
    const a = cache({ redis })
    await a.ready(30_000)
    expect(redis.status).toBe('ready')
  })

  it('staleServed counts the callers that got a stale value, not the loads', async () => {
    const prefix = prefixOf()
    const a = cache({ prefix, gracePeriodMs: 60_000, local: false })
    const policy = { ttlMs: 100, jitter: 0, loaderSoftTimeoutMs: 50 }
    await a.getOrLoad('k', () => 'v1', policy)
    await settled(a)
    await waitFor('v1 to go stale', async () => (await a.get('k')) === undefined)
    const release = deferred()
    const slow = async () => {
      await release.promise
      return 'v2'
    }
    // 10 callers share one flight; the soft timeout answers all of them with the stale value.
    const values = await Promise.all(Array.from({ length: 10 }, () => a.getOrLoad('k', slow, policy)))
    expect(values).toEqual(Array.from({ length: 10 }, () => 'v1'))
    expect(a.stats()).toMatchObject({ loads: 2, staleServed: 10, loadErrors: 0 }) // the first load, then the refresh
    release.resolve()
    await settled(a)
  })
})
