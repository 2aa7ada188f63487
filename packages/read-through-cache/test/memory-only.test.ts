import { afterEach, describe, expect, it } from 'vitest'
import {
  CacheClosedError,
  CacheOptionsError,
  createReadThroughCache,
  type ReadThroughCache,
  type ReadThroughCacheOptions,
} from '../src/index.js'
import { settled } from '../src/read-through-cache.js'
import { deferred } from './helpers/use-cache.js'

describe('memoryOnly: no Redis at all', () => {
  const caches: ReadThroughCache[] = []
  const cache = (options: Partial<ReadThroughCacheOptions> = {}) => {
    const c = createReadThroughCache({ memoryOnly: true, ...options })
    caches.push(c)
    return c
  }
  afterEach(async () => {
    await Promise.all(caches.splice(0).map((c) => c.close()))
  })

  it('options: redis or memoryOnly, not both, not neither; memoryOnly needs the local tier', () => {
    const optionOf = (options: ReadThroughCacheOptions) => {
      try {
        createReadThroughCache(options)
      } catch (error) {
        expect(error).toBeInstanceOf(CacheOptionsError)
        return (error as CacheOptionsError).context.option
      }
      return 'no error'
    }
    expect(optionOf({})).toBe('redis')
    expect(optionOf({ memoryOnly: true, redis: {} as never })).toBe('memoryOnly')
    expect(optionOf({ memoryOnly: true, local: false })).toBe('local')
    expect(optionOf({ memoryOnly: 'yes' as never })).toBe('memoryOnly')
  })

  it('single-flight in the process, then local hits; ready() resolves at once; set, get, mget, mset, has, expire, clear', async () => {
    const a = cache({ staleWhileRevalidateMs: 60_000 })
    await a.ready()
    let loads = 0
    const loader = async () => {
      loads++
      await new Promise((resolve) => setTimeout(resolve, 20))
      return { n: loads }
    }
    const values = await Promise.all(Array.from({ length: 20 }, () => a.getOrLoad('k', loader)))
    expect(values.every((value) => value.n === 1)).toBe(true)
    expect(await a.getOrLoad('k', loader)).toEqual({ n: 1 })
    expect(loads).toBe(1)
    expect(a.stats()).toMatchObject({ loads: 1, misses: 1, hitsLocal: 1 })
    await a.set('s', new Date(5))
    expect(await a.get('s')).toEqual(new Date(5))
    await a.mset([
      { key: 'm1', value: 1 },
      { key: 'm2', value: 2 },
    ])
    expect(await a.mget(['m1', 'm2', 'none'])).toEqual([1, 2, undefined])
    expect(await a.has('m1')).toBe(true)
    await a.expire('k')
    // Stale within SWR: served at once, one refresh in the background.
    expect(await a.getOrLoad('k', loader)).toEqual({ n: 1 })
    await settled(a)
    expect(await a.getOrLoad('k', loader)).toEqual({ n: 2 })
    await a.clear()
    expect(await a.mget(['k', 's', 'm1'])).toEqual([undefined, undefined, undefined])
  })

  it('no stale set: a delete during a load keeps its value out; the next read loads again', async () => {
    const a = cache()
    const read = deferred()
    const written = deferred()
    const loading = a.getOrLoad('k', async () => {
      read.resolve()
      await written.promise
      return 'old'
    })
    await read.promise
    await a.delete('k')
    written.resolve()
    expect(await loading).toBe('old')
    await settled(a)
    expect(await a.get('k')).toBeUndefined()
    expect(await a.getOrLoad('k', () => 'new')).toBe('new')
  })

  it('tags: deleteByTag removes call tags and setTags tags, and prevents the stale set of a load it races', async () => {
    const a = cache()
    await a.getOrLoad('p1', () => 'one', { tags: ['team'] })
    await a.getOrLoad('p2', (ctx) => {
      ctx.setTags(['author'])
      return 'two'
    })
    await settled(a)
    await a.deleteByTag('team')
    await a.deleteByTag('author')
    expect(await a.mget(['p1', 'p2'])).toEqual([undefined, undefined])
    // Races: the tag is invalidated while each loader still holds the old row.
    for (const late of [false, true]) {
      const read = deferred()
      const written = deferred()
      const key = late ? 'late' : 'early'
      const loading = a.getOrLoad(
        key,
        async (ctx) => {
          read.resolve()
          await written.promise
          if (late) ctx.setTags(['grp'])
          return 'old'
        },
        { tags: late ? [] : ['grp'] },
      )
      await read.promise
      await a.deleteByTag('grp')
      written.resolve()
      expect(await loading).toBe('old')
      await settled(a)
      expect(await a.get(key)).toBeUndefined()
    }
    expect(a.stats().staleSetsPrevented).toBe(2)
  })

  it('events: miss, set (load and set), hit, delete; close() ends it', async () => {
    const a = cache()
    const seen: string[] = []
    for (const type of ['hit', 'miss', 'set', 'delete'] as const) {
      a.on(type, (event) => seen.push(`${event.type}:${event.key}${event.source ? `:${event.source}` : ''}`))
    }
    await a.getOrLoad('k', () => 'v')
    await settled(a)
    await a.getOrLoad('k', () => 'v')
    await a.set('s', 1)
    await a.delete('s')
    expect(seen).toEqual(['miss:k', 'set:k:load', 'hit:k', 'set:s:set', 'delete:s'])
    await a.close()
    await expect(a.getOrLoad('k', () => 'v')).rejects.toBeInstanceOf(CacheClosedError)
  })
})
