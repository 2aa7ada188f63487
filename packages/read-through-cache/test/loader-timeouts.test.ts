import { waitFor } from '@scale/testkit'
import { describe, expect, it } from 'vitest'
import { CacheLoaderTimeoutError, createReadThroughCache } from '../src/index.js'
import { KeyLayout } from '../src/key-layout.js'
import { settled } from '../src/read-through-cache.js'
import { deferred, prefixOf, useCache } from './helpers/use-cache.js'

const never = () => new Promise<never>(() => {})

describe('loaders that hang', () => {
  const { cache, client } = useCache()

  it('hard timeout: callers get a typed error, the signal aborts, the lease is released and the key loads again', async () => {
    const prefix = prefixOf()
    const a = cache({ prefix, loaderHardTimeoutMs: 300 })
    const inspect = client()
    let signal: AbortSignal | undefined
    const calls = Array.from({ length: 5 }, () =>
      a.getOrLoad('k', ({ signal: s }) => {
        signal = s
        return never()
      }),
    )
    const errors = await Promise.all(calls.map((call) => call.catch((e: unknown) => e)))
    for (const error of errors) {
      expect(error).toBeInstanceOf(CacheLoaderTimeoutError)
      expect(error).toMatchObject({ code: 'E_CACHE_LOADER_TIMEOUT', context: { key: 'k', timeoutMs: 300 } })
    }
    expect(signal?.aborted).toBe(true)
    expect(signal?.reason).toBeInstanceOf(CacheLoaderTimeoutError)
    await settled(a)
    expect(await inspect.exists(new KeyLayout(prefix).entry('k').lease)).toBe(0)
    expect(a.stats()).toMatchObject({ loads: 1, loadErrors: 1, activeLoads: 0 })
    // The key is free again at once (no wait for the 10 s lease).
    expect(await a.getOrLoad('k', () => 'v')).toBe('v')
  })

  it('hung loaders fill the load limit only until their hard timeout; other keys queue under the limit and then load', async () => {
    // The hung loaders' 2 s leave the queued call's 100 ms a wide margin on a loaded machine.
    const a = cache({ maxConcurrentLoads: 2, loaderHardTimeoutMs: 2_000 })
    const hung = [a.getOrLoad('h1', never), a.getOrLoad('h2', never)].map((p) => p.catch((e: unknown) => e))
    await waitFor('both hung loaders to hold a slot', async () => a.stats().activeLoads === 2)
    let otherCalls = 0
    const other = a.getOrLoad(
      'other',
      () => {
        otherCalls++
        return 'other-value'
      },
      { loaderHardTimeoutMs: 60_000 },
    )
    // Queued behind the hung loaders with a shorter timeout of its own: gives up without running.
    let queuedCalls = 0
    const queued = a
      .getOrLoad(
        'queued',
        () => {
          queuedCalls++
          return 'never-runs'
        },
        { loaderHardTimeoutMs: 100 },
      )
      .catch((e: unknown) => e)
    expect(await queued).toBeInstanceOf(CacheLoaderTimeoutError)
    expect(queuedCalls).toBe(0)
    expect(otherCalls).toBe(0) // the limit holds while the hung loaders have their slots
    expect(await other).toBe('other-value')
    for (const error of await Promise.all(hung)) expect(error).toBeInstanceOf(CacheLoaderTimeoutError)
    expect(a.stats().peakConcurrentLoads).toBe(2)
    expect(a.stats().activeLoads).toBe(0)
  })

  it('soft timeout: with a stale value the callers get it, and the slow load still writes its value', async () => {
    const a = cache({ gracePeriodMs: 60_000 })
    await a.getOrLoad('k', () => 'v1', { ttlMs: 100, jitter: 0 })
    await settled(a)
    await waitFor('v1 to go stale', async () => (await a.get('k')) === undefined)
    const release = deferred()
    const value = await a.getOrLoad(
      'k',
      async () => {
        await release.promise
        return 'v2'
      },
      { ttlMs: 60_000, loaderSoftTimeoutMs: 100 },
    )
    expect(value).toBe('v1')
    expect(a.stats().staleServed).toBe(1)
    release.resolve()
    await settled(a)
    expect(await a.get('k')).toBe('v2')
    expect(await a.getOrLoad('k', () => 'v3')).toBe('v2')
  })

  it('hard timeout with a stale value in the grace period serves the stale value', async () => {
    const a = cache({ gracePeriodMs: 60_000 })
    await a.getOrLoad('k', () => 'v1', { ttlMs: 100, jitter: 0 })
    await settled(a)
    await waitFor('v1 to go stale', async () => (await a.get('k')) === undefined)
    expect(await a.getOrLoad('k', never, { loaderHardTimeoutMs: 200 })).toBe('v1')
    expect(a.stats().loadErrors).toBe(1)
  })

  it('close() resolves with hung loaders (they end at their hard timeout), and a batch loader is bounded too', async () => {
    const a = createReadThroughCache({ redis: client(), prefix: prefixOf(), loaderHardTimeoutMs: 300 })
    const hung = a.getOrLoad('k', never).catch((e: unknown) => e)
    const batch = a.getOrLoadMany(['x', 'y'], never).catch((e: unknown) => e)
    await waitFor('the loads to run', async () => a.stats().activeLoads === 2)
    await a.close()
    expect(await hung).toBeInstanceOf(CacheLoaderTimeoutError)
    expect(await batch).toBeInstanceOf(CacheLoaderTimeoutError)
  })
})
