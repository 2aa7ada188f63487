import { waitFor } from '@scale/testkit'
import { describe, expect, it } from 'vitest'
import { createReadThroughCache } from '../src/index.js'
import { prefixOf, useCache } from './helpers/use-cache.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

// The database-side view of a Redis outage: how many loader calls the cache lets through while
// Redis is gone, against the same window before it. Counts only; the windows are equal.
describe('a Redis outage under 20 readers', () => {
  const env = useCache()

  it('Redis killed for 10 s: loader calls stay within 2x the rate before, no caller sees an error, one load per key at a time', async () => {
    const redis = env.client()
    // Default options, as a user would have them, with an entry TTL equal to the outage TTL.
    const cache = createReadThroughCache({
      redis,
      prefix: prefixOf(),
      ttlMs: 5_000,
    })
    await cache.ready()
    const keys = 50
    let loads = 0
    const activeByKey = new Map<string, number>()
    let overlapping = 0
    const loader = async ({ key }: { key: string }) => {
      loads++
      const active = (activeByKey.get(key) ?? 0) + 1
      activeByKey.set(key, active)
      if (active > 1) overlapping++
      await sleep(2) // a database round trip
      activeByKey.set(key, active - 1)
      return `value-${key}`
    }
    let errors = 0
    let wrong = 0
    let reads = 0
    let stop = false
    const reader = async () => {
      while (!stop) {
        const key = `k${Math.floor(Math.random() * keys)}`
        try {
          if ((await cache.getOrLoad(key, loader)) !== `value-${key}`) wrong++
        } catch {
          errors++
        }
        reads++
        await sleep(1)
      }
    }
    const readers = Array.from({ length: 20 }, () => reader())
    try {
      // Warm-up: every key loaded once, then one TTL so expiries spread out.
      await waitFor('every key to be loaded', async () => loads >= keys, { timeoutMs: 30_000 })
      await sleep(5_000)
      const window = 10_000
      const loadsBefore = loads
      await sleep(window)
      const before = loads - loadsBefore

      await env.server.kill()
      const loadsAtKill = loads
      const readsAtKill = reads
      await sleep(window)
      const during = loads - loadsAtKill
      expect(reads - readsAtKill).toBeGreaterThan(1_000) // the readers kept being served

      await env.server.start()
      await waitFor('the circuit to close again', async () => cache.stats().circuit === 'closed', {
        timeoutMs: 60_000,
      })
      expect(before).toBeGreaterThan(0)
      expect(during).toBeLessThanOrEqual(2 * before)
      expect(errors).toBe(0)
      expect(wrong).toBe(0)
      expect(overlapping).toBe(0) // single flight per key within the process, outage included
    } finally {
      stop = true
      await Promise.all(readers)
      await cache.close()
    }
  })
})
