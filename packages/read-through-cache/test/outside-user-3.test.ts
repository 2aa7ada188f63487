import { waitFor } from '@scale/testkit'
import { describe, expect, it } from 'vitest'
import { CacheLoaderTimeoutError, createReadThroughCache } from '../src/index.js'
import { useCache } from './helpers/use-cache.js'

// A third outside user's checks of the shared deadline queue through the public API (found with the
// packed tarballs in a scratch project, /tmp/tester-cache3; see the report); counts only.

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

describe('outside user 3: loader hard timeouts en masse', () => {
  it('2,000 hung loaders with one loaderHardTimeoutMs, and 10 more started a little later, all reject with CacheLoaderTimeoutError', async () => {
    // Every timed-out loader call settles its own queue entry from inside the queue's timer callback;
    // past 1,024 of them the queue used to compact its array under the loop that was walking it, and
    // the deadlines behind were lost: those callers never settled (a memory-only process exited with
    // code 13 on its top-level await).
    const cache = createReadThroughCache({
      memoryOnly: true,
      loaderHardTimeoutMs: 300,
      maxConcurrentLoads: 5_000,
    })
    const hang = () => new Promise<never>(() => {})
    let timedOut = 0
    let other = 0
    const count = (error: unknown) => {
      if (error instanceof CacheLoaderTimeoutError) timedOut++
      else other++
    }
    const calls = Array.from({ length: 2_000 }, (_, i) => cache.getOrLoad(`a${i}`, hang).catch(count))
    await sleep(20)
    calls.push(...Array.from({ length: 10 }, (_, i) => cache.getOrLoad(`b${i}`, hang).catch(count)))
    // Every call settles (the bound is only a watchdog: a lost deadline never settles).
    await waitFor('every call to settle', () => timedOut + other === 2_010, { timeoutMs: 30_000 })
    expect({ timedOut, other }).toEqual({ timedOut: 2_010, other: 0 })
    // Bounded: close() waits for running loads, which never end if their deadline was lost.
    await Promise.race([Promise.all(calls).then(() => cache.close()), sleep(1_000)])
  })
})

describe('outside user 3: many caches on one client', () => {
  const env = useCache()

  it("twenty caches sharing one client, each awaiting ready() while it connects, hold one 'ready' listener on it and trip no MaxListenersExceededWarning", async () => {
    const redis = env.client({ lazyConnect: true })
    const before = redis.listenerCount('ready')
    const warnings: string[] = []
    const onWarning = (warning: Error) => warnings.push(warning.name)
    process.on('warning', onWarning)
    try {
      const caches = Array.from({ length: 20 }, () => env.cache({ redis }))
      // One listener per cache (its replay trigger) and one per waiting ready() was 40 on this client.
      await Promise.all(caches.map((cache) => cache.ready()))
      expect(redis.listenerCount('ready') - before).toBe(1)
      await Promise.all(caches.map((cache) => cache.close()))
      expect(redis.listenerCount('ready')).toBe(before)
      await sleep(10) // Node emits the warning on a later tick
      expect(warnings).toEqual([])
    } finally {
      process.off('warning', onWarning)
    }
  })
})
