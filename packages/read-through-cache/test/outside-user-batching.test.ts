import { waitFor } from '@scale/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CacheUnavailableError } from '../src/index.js'
import { KeyLayout } from '../src/key-layout.js'
import { prefixOf, useCache } from './helpers/use-cache.js'

// An outside user's checks around the batched miss path (the get-or-lease and set-if-lease calls of one
// turn go to Redis as one script call each), found with the packed tarballs in a scratch project; each
// test states the behaviour a user relies on, with counts only.

describe('outside user: a plain Redis client on a one-shard Redis Cluster', () => {
  // One node holding all 16384 slots, reached with `new Redis(url)`: what a managed "cluster mode"
  // cache with one shard looks like to an app, and how a clustered Redis Enterprise database looks
  // behind its proxy. The server refuses a script whose keys are in more than one slot (CROSSSLOT).
  // Every script of the cache names one entry's keys under one hash tag, but a batch holds the keys of
  // many entries: the cache must notice the refusal and send the calls one by one.
  const env = useCache({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'] })

  beforeAll(async () => {
    await env.server.command('cluster', 'addslotsrange', '0', '16383')
    await waitFor('the one-node cluster to be ok', async () =>
      String(await env.server.command('cluster', 'info')).includes('cluster_state:ok'),
    )
  })

  it('stores the misses of one turn (keys of different entries never share a script call)', async () => {
    const cache = env.cache({ local: false })
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`)
    let loaderCalls = 0
    const load = (key: string) => () => {
      loaderCalls++
      return key
    }
    expect(await Promise.all(keys.map((key) => cache.getOrLoad(key, load(key))))).toEqual(keys)
    // Read again on the same connection: each key was stored, so no second load.
    expect(await Promise.all(keys.map((key) => cache.getOrLoad(key, load(key))))).toEqual(keys)
    expect(loaderCalls).toBe(10)
    expect(cache.stats().redisErrors).toBe(0)
  })

  it('control: with coalesceWrites: false (no batching) the same misses are stored', async () => {
    const cache = env.cache({ local: false, coalesceWrites: false })
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`)
    let loaderCalls = 0
    const load = (key: string) => () => {
      loaderCalls++
      return key
    }
    await Promise.all(keys.map((key) => cache.getOrLoad(key, load(key))))
    await Promise.all(keys.map((key) => cache.getOrLoad(key, load(key))))
    expect(loaderCalls).toBe(10)
    expect(cache.stats().redisErrors).toBe(0)
  })

  it('mget and getOrLoadMany read what is stored although the server refuses MGET across slots: no second load', async () => {
    const prefix = prefixOf()
    const cache = env.cache({ prefix, local: false })
    const keys = Array.from({ length: 10 }, (_, i) => `m${i}`)
    let loaderCalls = 0
    const loadMany = async (missing: readonly string[]) => {
      loaderCalls += missing.length
      return new Map(missing.map((key) => [key, key]))
    }
    expect(await cache.getOrLoadMany(keys, loadMany)).toEqual(keys)
    // Stored (guarantee 6 covers get after getOrLoad; the writes of getOrLoadMany may still be on their way).
    const admin = env.client()
    const stored = keys.map((key) => new KeyLayout(prefix).entry(key).value)
    // One EXISTS per key: this server refuses a multi-key EXISTS across slots too.
    const present = async () => (await Promise.all(stored.map((key) => admin.exists(key)))).every(Boolean)
    await waitFor('the values to be stored', present)
    expect(await cache.mget(keys)).toEqual(keys)
    expect(await cache.getOrLoadMany(keys, loadMany)).toEqual(keys)
    expect(loaderCalls).toBe(10)
    expect(cache.stats().redisErrors).toBe(0)
  })
})

describe('outside user: read your own load (README guarantee 6)', () => {
  const env = useCache()

  // Guarantee 6: "A get() right after it goes to Redis on the same connection after the write, so it
  // normally sees the value", with the exceptions it lists (write refused, failed, NOSCRIPT, replica
  // reads); tags are not among them, and the README quick start's own getOrLoad passes `tags`.
  for (const tagging of ['call tags', 'ctx.setTags'] as const) {
    it(`a get() right after a getOrLoad with ${tagging} resolved sees the loaded value`, async () => {
      const cache = env.cache({ local: false })
      // The scripts are known to the server: NOSCRIPT (first use) is a documented exception.
      await cache.getOrLoad('warm', () => 0, { tags: ['team:7'] })
      let missedRightAfter = 0
      for (let i = 0; i < 20; i++) {
        const key = `user:${i}`
        await cache.getOrLoad(
          key,
          (ctx) => {
            if (tagging === 'ctx.setTags') ctx.setTags(['team:7'])
            return { id: i }
          },
          tagging === 'call tags' ? { tags: ['team:7'] } : {},
        )
        if ((await cache.get(key, { local: false })) === undefined) missedRightAfter++
      }
      expect(missedRightAfter).toBe(0)
    })
  }

  it('control: without tags a get() right after getOrLoad sees the value', async () => {
    const cache = env.cache({ local: false })
    await cache.getOrLoad('warm', () => 0)
    let missedRightAfter = 0
    for (let i = 0; i < 20; i++) {
      await cache.getOrLoad(`user:${i}`, () => ({ id: i }))
      if ((await cache.get(`user:${i}`, { local: false })) === undefined) missedRightAfter++
    }
    expect(missedRightAfter).toBe(0)
  })
})

describe('outside user: what held up in the batch form', () => {
  const env = useCache()

  it('poisoned keys in one batch fail alone: the other 94 of 100 misses are stored, callers all get their value', async () => {
    const prefix = prefixOf()
    const layout = new KeyLayout(prefix)
    const raw = env.client()
    const poisoned = [10, 11, 12, 13, 14, 15]
    for (const i of poisoned) {
      const entry = layout.entry(`k${i}`)
      // Wrong type under the cache's prefix: a hash where the value (even) or the lease (odd) lives.
      await raw.hset(i % 2 === 0 ? entry.value : entry.lease, 'x', '1')
    }
    // Six failures in a row would open the circuit (each WRONGTYPE counts as a Redis failure) and the
    // MGET below would then be refused: this test is about the batch, not the breaker.
    const cache = env.cache({
      keyPrefix: prefix,
      local: false,
      maxConcurrentLoads: 1_000,
      circuitBreaker: { failureThreshold: 1_000 },
    })
    // Scripts known to the server first: after a NOSCRIPT the write is re-sent behind the MGET below.
    await cache.getOrLoad('warm', () => 0)
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
    const settled = await Promise.allSettled(keys.map((key) => cache.getOrLoad(key, () => `v:${key}`)))
    expect(settled.filter((s) => s.status === 'rejected')).toEqual([])
    expect(settled.map((s) => (s as PromiseFulfilledResult<unknown>).value)).toEqual(
      keys.map((k) => `v:${k}`),
    )
    // Read on the cache's own connection, after its writes (an MGET of a hash key answers nil).
    const cached = await cache.mget(keys, { local: false })
    expect(cached.filter((v) => v !== undefined)).toHaveLength(94)
    expect(cache.stats().redisErrors).toBe(6)
  })

  it('SCRIPT FLUSH before a burst of 150 misses: the batch form falls back to EVAL, all stored, one load each', async () => {
    const prefix = prefixOf()
    const layout = new KeyLayout(prefix)
    const raw = env.client()
    const cache = env.cache({ keyPrefix: prefix, local: false, maxConcurrentLoads: 1_000 })
    await cache.getOrLoad('warm', () => 0)
    await raw.script('FLUSH')
    const keys = Array.from({ length: 150 }, (_, i) => `k${i}`)
    let loaderCalls = 0
    const values = await Promise.all(
      keys.map((key) =>
        cache.getOrLoad(key, () => {
          loaderCalls++
          return key
        }),
      ),
    )
    expect(values).toEqual(keys)
    await Promise.all(keys.map((key) => cache.getOrLoad(key, () => `again:${key}`)))
    expect(loaderCalls).toBe(150)
    expect(await raw.exists(...keys.map((key) => layout.entry(key).value))).toBe(150)
    expect(cache.stats().redisErrors).toBe(0)
  })
})

describe('outside user: an invalidation whose reply is lost while Redis hangs', () => {
  // SIGSTOP with the circuit still closed: the command is already in Redis' socket buffer when it times
  // out, so it runs on resume and only its reply is lost. hung-redis.test.ts calls deleteByTag with the
  // circuit already open (refused before it is sent), which does not show this.
  const env = useCache()

  afterAll(() => {
    env.server.resume()
  })

  async function storedTaggedValues() {
    const prefix = prefixOf()
    const layout = new KeyLayout(prefix)
    const raw = env.client()
    // Stored with the default command timeout (a loaded machine must not make a write time out);
    // the cache under test shares the prefix and has the short one.
    const writer = env.cache({ keyPrefix: prefix, local: false })
    const keys = Array.from({ length: 5 }, (_, i) => `k${i}`)
    await Promise.all(keys.map((key) => writer.getOrLoad(key, () => `old:${key}`, { tags: ['grp'] })))
    const cache = env.cache({ keyPrefix: prefix, local: false, commandTimeoutMs: 300 })
    await cache.ready()
    const stored = async () => {
      let n = 0
      for (const key of keys) n += await raw.exists(layout.entry(key).value)
      return n
    }
    await waitFor('the 5 tagged values to be stored', async () => (await stored()) === 5)
    return { cache, keys, stored }
  }

  it('a deleteByTag refused with queuedForReplay leaves none of the tagged values in Redis after its replay', async () => {
    const { cache, keys, stored } = await storedTaggedValues()
    env.server.pause()
    const error = await cache.deleteByTag('grp').catch((e: unknown) => e)
    env.server.resume()
    expect(error).toBeInstanceOf(CacheUnavailableError)
    expect((error as CacheUnavailableError).context.queuedForReplay).toBe(true)
    await waitFor('the queued deleteByTag to be replayed', () => cache.stats().pendingInvalidations === 0)
    // The first member-taking script runs on resume and its reply (the members) is dropped: the replay
    // must still find and delete what it took.
    expect(await stored()).toBe(0)
    const values = await Promise.all(keys.map((key) => cache.getOrLoad(key, () => `new:${key}`)))
    expect(values.filter((value) => value === undefined || String(value).startsWith('old:'))).toEqual([])
  })

  it('control: a deleteMany of the same keys refused the same way is replayed (none left)', async () => {
    const { cache, keys, stored } = await storedTaggedValues()
    env.server.pause()
    const error = await cache.deleteMany(keys).catch((e: unknown) => e)
    env.server.resume()
    expect(error).toBeInstanceOf(CacheUnavailableError)
    await waitFor('the queued deletes to be replayed', () => cache.stats().pendingInvalidations === 0)
    expect(await stored()).toBe(0)
  })
})

describe('outside user: a few wrong-type keys under the prefix', () => {
  const env = useCache()

  it('6 wrong-type keys among 100 misses of one getOrLoadMany: the other 94 are stored (default breaker)', async () => {
    // The batch form isolates each failing call at the Lua level (the test above), but each WRONGTYPE
    // also counts as a Redis failure: six in a row open the circuit, and the healthy calls' writes are
    // then refused, so none of them is stored although Redis answers fine.
    const prefix = prefixOf()
    const layout = new KeyLayout(prefix)
    const raw = env.client()
    const cache = env.cache({ keyPrefix: prefix, local: false })
    await cache.getOrLoad('warm', () => 0)
    for (const i of [10, 11, 12, 13, 14, 15]) {
      const entry = layout.entry(`k${i}`)
      await raw.hset(i % 2 === 0 ? entry.lease : entry.value, 'x', '1')
    }
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
    const values = await cache.getOrLoadMany(
      keys,
      async (missing) => new Map(missing.map((key) => [key, `v:${key}`])),
    )
    expect(values).toEqual(keys.map((key) => `v:${key}`))
    await cache.get('warm') // on the cache's connection, after its writes
    let stored = 0
    for (const key of keys) if ((await raw.type(layout.entry(key).value)) === 'string') stored++
    expect(stored).toBe(94)
  })
})
