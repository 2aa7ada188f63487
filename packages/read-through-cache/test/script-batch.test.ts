import type { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { KeyLayout } from '../src/key-layout.js'
import { settled } from '../src/read-through-cache.js'
import { prefixOf, useCache } from './helpers/use-cache.js'

/** How many scripts Redis has run so far (EVALSHA, and EVAL for the first use of a script). */
async function scriptCalls(redis: Redis): Promise<number> {
  const stats = await redis.info('commandstats')
  let calls = 0
  for (const match of stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(match[1])
  return calls
}

describe('the lease scripts of one turn go to Redis as one batched script call', () => {
  const { cache, client } = useCache()
  const keys = Array.from({ length: 50 }, (_, i) => `user:${i}`)

  it('50 keys missing together: a handful of script calls instead of two per key; every key stored', async () => {
    const inspect = client()
    for (const coalesceWrites of [true, false]) {
      const prefix = prefixOf()
      const c = cache({ prefix, local: false, coalesceWrites })
      await c.ready()
      const before = await scriptCalls(inspect)
      const values = await Promise.all(keys.map((key) => c.getOrLoad(key, () => `v:${key}`)))
      await settled(c)
      const calls = (await scriptCalls(inspect)) - before
      expect(values).toEqual(keys.map((key) => `v:${key}`))
      const layout = new KeyLayout(prefix)
      const stored = await inspect.mget(keys.map((key) => layout.entry(key).value))
      expect(stored.every((text, i) => text?.endsWith(JSON.stringify(`v:${keys[i]}`)))).toBe(true)
      // Unbatched (the control), each miss is a get-or-lease and a write of its own: 100 scripts.
      if (coalesceWrites) expect(calls).toBeLessThanOrEqual(8)
      else expect(calls).toBe(100)
    }
  })

  it('a script call carries at most 64 calls and about 256 KiB: 200 misses of 10 KB values take at least 4 read and 8 write calls', async () => {
    const inspect = client()
    const prefix = prefixOf()
    const c = cache({ prefix, local: false })
    await c.ready()
    const many = Array.from({ length: 200 }, (_, i) => `big:${i}`)
    const big = (key: string) => `${key}:${'x'.repeat(10_000)}`
    const before = await scriptCalls(inspect)
    const values = await Promise.all(many.map((key) => c.getOrLoad(key, () => big(key))))
    await settled(c)
    const calls = (await scriptCalls(inspect)) - before
    expect(values).toEqual(many.map(big))
    expect(calls).toBeGreaterThanOrEqual(4 + 8)
    expect(calls).toBeLessThan(100)
    const layout = new KeyLayout(prefix)
    const stored = await inspect.mget(many.map((key) => layout.entry(key).value))
    expect(stored.every((text, i) => text?.endsWith(JSON.stringify(big(many[i] as string))))).toBe(true)
  })

  it('a call that fails inside a batch fails alone: its caller still gets the loaded value, the other keys are stored', async () => {
    const prefix = prefixOf()
    const inspect = client()
    const layout = new KeyLayout(prefix)
    // A foreign value of the wrong type where the lease of `user:7` goes: its get-or-lease errors (WRONGTYPE).
    await inspect.hset(layout.entry('user:7').lease, 'foreign', '1')
    const c = cache({ prefix, local: false })
    await c.ready()
    const before = await scriptCalls(inspect)
    const values = await Promise.all(keys.map((key) => c.getOrLoad(key, () => `v:${key}`)))
    await settled(c)
    expect(values).toEqual(keys.map((key) => `v:${key}`))
    // The poisoned call shared a batch with others (else this proves nothing about isolation).
    expect((await scriptCalls(inspect)) - before).toBeLessThan(keys.length)
    const stored = await inspect.mget(keys.map((key) => layout.entry(key).value))
    expect(stored.filter((text) => text === null)).toHaveLength(1)
    expect(stored[7]).toBeNull()
    expect(await inspect.type(layout.entry('user:7').lease)).toBe('hash')
  })

  it("a load's write leaves before its callers are answered: their next read, on the same connection, sees the value", async () => {
    const c = cache({ local: false })
    await c.ready()
    const readBack = await Promise.all(
      keys.map(async (key) => {
        await c.getOrLoad(key, () => `v:${key}`)
        return c.get(key)
      }),
    )
    expect(readBack).toEqual(keys.map((key) => `v:${key}`))
  })
})
