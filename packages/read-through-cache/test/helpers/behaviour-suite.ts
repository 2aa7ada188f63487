import { randomBytes } from 'node:crypto'
import { type PostgresCluster, startPostgres, waitFor } from '@scale/testkit'
import type { Cluster, Redis } from 'ioredis'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { decodeEnvelope } from '../../src/envelope.js'
import {
  CacheBatchResultError,
  CacheClosedError,
  CacheKeyError,
  CacheOptionsError,
  CacheSerializationError,
  createReadThroughCache,
  type ReadThroughCache,
  type ReadThroughCacheOptions,
} from '../../src/index.js'
import { KeyLayout } from '../../src/key-layout.js'
import { hasLocal, settled } from '../../src/read-through-cache.js'
import { ChildCache } from './child-cache.js'
import { connect, disconnect, type RedisTarget } from './redis-target.js'

/** What the suite needs from a Redis deployment: where it is, and how to take it down and back up. */
export interface RedisEnvironment {
  target: RedisTarget
  /** kill -9 of every redis-server of the deployment. */
  kill(): Promise<void>
  /** Starts them again and waits until the deployment serves every key. */
  start(): Promise<void>
  stop(): Promise<void>
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const prefixOf = (name: string) => `t${randomBytes(4).toString('hex')}-${name}:`

function deferred<T = void>() {
  let resolve: (value: T) => void = () => {}
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

/**
 * The behaviour suite, written once and run against a single Redis and against a Redis Cluster.
 * Every test uses its own random prefix; the servers are real (testkit), and so is Postgres.
 */
export function defineCacheBehaviour(name: string, makeEnvironment: () => Promise<RedisEnvironment>): void {
  describe(`read-through cache on ${name}`, () => {
    let env: RedisEnvironment
    let postgres: PostgresCluster
    let pool: pg.Pool
    const clients: (Redis | Cluster)[] = []
    const caches: ReadThroughCache[] = []
    const children: ChildCache[] = []
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)

    function client(): Redis | Cluster {
      const c = connect(env.target)
      clients.push(c)
      return c
    }

    function cache(options: Partial<ReadThroughCacheOptions> & { prefix: string }): ReadThroughCache {
      // A generous timeout by default: a loaded CI machine must not turn a slow first command into a failure.
      const c = createReadThroughCache({ redis: client(), commandTimeoutMs: 5_000, ...options })
      caches.push(c)
      return c
    }

    function child(prefix: string, leases = true): ChildCache {
      const c = new ChildCache({ target: env.target, pgUrl: postgres.primary.url, prefix, leases })
      children.push(c)
      return c
    }

    /** Reads the stored entry straight from Redis, bypassing the cache. */
    async function stored(redis: Redis | Cluster, prefix: string, key: string): Promise<unknown> {
      const text = await redis.get(new KeyLayout(prefix).entry(key).value)
      if (text === null) return undefined
      const envelope = decodeEnvelope(text)
      return envelope?.negative ? null : JSON.parse(envelope?.payload ?? 'null')
    }

    beforeAll(async () => {
      process.on('unhandledRejection', onUnhandled)
      ;[env, postgres] = await Promise.all([
        makeEnvironment(),
        startPostgres({ settings: { max_connections: 200 } }),
      ])
      pool = new pg.Pool({ ...postgres.primary.connection, max: 20 })
      pool.on('error', () => {})
      await pool.query('CREATE TABLE rtc_counter (name text PRIMARY KEY, n int NOT NULL)')
      await pool.query('CREATE TABLE rtc_row (id int PRIMARY KEY, val text NOT NULL)')
    })

    afterEach(async () => {
      await Promise.all(caches.splice(0).map((c) => c.close()))
      await Promise.all(children.splice(0).map((c) => c.close()))
      await Promise.all(clients.splice(0).map((c) => disconnect(c)))
    })

    afterAll(async () => {
      process.off('unhandledRejection', onUnhandled)
      await pool?.end()
      await postgres?.stop()
      await env?.stop()
      // No unhandled rejection anywhere in the suite, outage included.
      expect(unhandled).toEqual([])
    })

    it('loads once, then serves from Redis to another instance and from the local tier', async () => {
      const prefix = prefixOf('basic')
      const counted: Record<string, number> = {}
      const a = cache({
        prefix,
        metrics: {
          increment(name: string, labels?: Record<string, string>, value = 1) {
            const id = labels?.tier === undefined ? name : `${name}{tier=${labels.tier}}`
            counted[id] = (counted[id] ?? 0) + value
          },
        },
      })
      const b = cache({ prefix, local: false })
      await a.ready()
      let calls = 0
      const loader = async () => {
        calls++
        return { id: 1, name: 'ada' }
      }
      expect(await a.getOrLoad('user:1', loader)).toEqual({ id: 1, name: 'ada' })
      await settled(a) // callers are answered before the write to Redis and the local tier ends
      expect(await a.getOrLoad('user:1', loader)).toEqual({ id: 1, name: 'ada' })
      expect(await b.getOrLoad('user:1', loader)).toEqual({ id: 1, name: 'ada' })
      expect(calls).toBe(1)
      expect(a.stats()).toMatchObject({ loads: 1, misses: 1, hitsLocal: 1 })
      // The metrics hook sees the same, under the convention's names.
      expect(counted).toMatchObject({
        read_through_cache_loads_total: 1,
        read_through_cache_misses_total: 1,
        'read_through_cache_hits_total{tier=local}': 1,
      })
      expect(b.stats()).toMatchObject({ loads: 0, hitsRedis: 1, hitsLocal: 0 })
      expect(await b.get('user:1')).toEqual({ id: 1, name: 'ada' })
      expect(await b.get('user:2')).toBeUndefined()
    })

    it('1,000 concurrent getOrLoad of one missing key in each of 4 processes run the Postgres loader exactly once', async () => {
      const prefix = prefixOf('stampede')
      await pool.query("INSERT INTO rtc_counter VALUES ('stampede', 0), ('stampede-control', 0)")
      const processes = [0, 1, 2, 3].map(() => child(prefix))
      await Promise.all(processes.map((p) => p.ready))
      const replies = await Promise.all(
        processes.map((p) => p.call({ op: 'burst', key: 'hot', counter: 'stampede', calls: 1_000 })),
      )
      const { rows } = await pool.query("SELECT n FROM rtc_counter WHERE name = 'stampede'")
      // A Redis error would make a process load without the lease (outage behaviour): say so first.
      expect(replies.map((r) => r.redisErrors)).toEqual([0, 0, 0, 0])
      expect(rows[0].n).toBe(1)
      // Every one of the 4,000 calls got the value of that single load.
      expect(replies.map((r) => r.values)).toEqual([['loaded-1'], ['loaded-1'], ['loaded-1'], ['loaded-1']])
      expect(replies.reduce((sum, r) => sum + (r.loads as number), 0)).toBe(1)

      // Control: without leases each process loads on its own (in-process single-flight only).
      const control = [0, 1, 2, 3].map(() => child(`${prefix}c`, false))
      await Promise.all(control.map((p) => p.ready))
      await Promise.all(
        control.map((p) => p.call({ op: 'burst', key: 'hot', counter: 'stampede-control', calls: 1_000 })),
      )
      const controlRows = await pool.query("SELECT n FROM rtc_counter WHERE name = 'stampede-control'")
      expect(controlRows.rows[0].n).toBeGreaterThan(1)
    })

    it('4 processes miss a key whose loader finds nothing or throws: the lease holder tells the waiters, 1 loader call in all', async () => {
      const prefix = prefixOf('outcome')
      await pool.query("INSERT INTO rtc_counter VALUES ('outcome-missing', 0), ('outcome-error', 0)")
      const processes = [0, 1, 2, 3].map(() => child(prefix))
      await Promise.all(processes.map((p) => p.ready))
      const missing = await Promise.all(
        processes.map((p) =>
          p.call({ op: 'burst', key: 'gone', counter: 'outcome-missing', calls: 250, outcome: 'missing' }),
        ),
      )
      expect(missing.map((r) => r.redisErrors)).toEqual([0, 0, 0, 0])
      expect(missing.map((r) => r.missing)).toEqual([250, 250, 250, 250])
      const failing = await Promise.all(
        processes.map((p) =>
          p.call({ op: 'burst', key: 'broken', counter: 'outcome-error', calls: 250, outcome: 'error' }),
        ),
      )
      expect(failing.map((r) => r.redisErrors)).toEqual([0, 0, 0, 0])
      const errors = failing.flatMap((r) => r.errors as string[]).sort()
      // The holder's own callers get its error; the other three processes get it as a typed remote error.
      expect(errors).toEqual([
        ...Array.from({ length: 3 }, () =>
          expect.stringMatching(/^CacheRemoteLoadError: .*database says no \(1\)/),
        ),
        'Error: database says no (1)',
      ])
      const { rows } = await pool.query(
        "SELECT name, n FROM rtc_counter WHERE name IN ('outcome-missing', 'outcome-error') ORDER BY name",
      )
      expect(rows).toEqual([
        { name: 'outcome-error', n: 1 },
        { name: 'outcome-missing', n: 1 },
      ])
      // Nothing was cached: the next call loads again (the outcome was for the waiters only).
      const again = await child(prefix).call({ op: 'load', key: 'gone', value: 'now-here' })
      expect(again.value).toBe('now-here')
    })

    /**
     * Each iteration: a loader reads v1 from Postgres; the writer then updates the row to v2 and
     * invalidates; only then does the loader return v1. Without leases that v1 lands in the cache.
     */
    async function raceHarness(
      leases: boolean,
      iterations: number,
    ): Promise<{ staleSets: number; wrongReads: number }> {
      const prefix = prefixOf(leases ? 'race' : 'race-control')
      const base = leases ? 0 : 1_000_000
      const reader = cache({ prefix, leases })
      const writer = cache({ prefix, leases })
      const inspect = client()
      await Promise.all([reader.ready(), writer.ready()])
      const ids = Array.from({ length: iterations }, (_, i) => base + i)
      await pool.query("INSERT INTO rtc_row SELECT id, 'v1' FROM unnest($1::int[]) id", [ids])
      let staleSets = 0
      let wrongReads = 0
      const batch = 50
      for (let start = 0; start < iterations; start += batch) {
        await Promise.all(
          ids.slice(start, start + batch).map(async (id) => {
            const key = `row:${id}`
            const read = deferred()
            const written = deferred()
            const load = reader.getOrLoad(key, async () => {
              const { rows } = await pool.query('SELECT val FROM rtc_row WHERE id = $1', [id])
              read.resolve()
              await written.promise // slow loader: it returns only after the invalidation
              return rows[0].val as string
            })
            await read.promise
            await pool.query("UPDATE rtc_row SET val = 'v2' WHERE id = $1", [id])
            await writer.delete(key)
            written.resolve()
            await load
            await settled(reader)
            const value = await stored(inspect, prefix, key)
            if (value === 'v1') staleSets++
            // A later read through either cache must see v2.
            const after = await writer.getOrLoad(key, async () => {
              const { rows } = await pool.query('SELECT val FROM rtc_row WHERE id = $1', [id])
              return rows[0].val as string
            })
            if (after !== 'v2') wrongReads++
          }),
        )
      }
      return { staleSets, wrongReads }
    }

    it('race harness, 1,000 iterations: an invalidation during a slow load leaves v2 or nothing, never v1', async () => {
      const result = await raceHarness(true, 1_000)
      expect(result).toEqual({ staleSets: 0, wrongReads: 0 })
    })

    it('race harness control: with leases off the same interleaving writes stale values', async () => {
      const result = await raceHarness(false, 200)
      expect(result.staleSets).toBeGreaterThan(0)
    })

    it('clear() empties the prefix in Redis (every node) and in another instance local tier', async () => {
      const prefix = prefixOf('clear')
      const a = cache({ prefix })
      const b = cache({ prefix })
      const inspect = client()
      await Promise.all([a.ready(), b.ready()])
      for (let i = 0; i < 30; i++) await a.getOrLoad(`c${i}`, () => i, { tags: [`t${i % 3}`] })
      await settled(a)
      expect(await b.getOrLoad('c1', () => 'wrong')).toBe(1)
      expect(await a.clear()).toBeGreaterThanOrEqual(30)
      await waitFor('b to empty its local tier', async () => !hasLocal(b, 'c1'))
      for (let i = 0; i < 30; i++) expect(await stored(inspect, prefix, `c${i}`)).toBeUndefined()
      expect(await b.getOrLoad('c1', () => 'reloaded')).toBe('reloaded')
    })

    it('an invalidation in one process removes the entry from another process local tier', async () => {
      const prefix = prefixOf('bus')
      const a = cache({ prefix })
      const b = child(prefix)
      await Promise.all([a.ready(), b.ready])
      expect((await b.call({ op: 'load', key: 'k', value: 'v1' })).value).toBe('v1')
      expect((await b.call({ op: 'hasLocal', key: 'k' })).hasLocal).toBe(true)
      await a.delete('k')
      await waitFor(
        'process B to drop the key',
        async () => (await b.call({ op: 'hasLocal', key: 'k' })).hasLocal === false,
        {
          timeoutMs: 10_000,
          intervalMs: 20,
        },
      )
      // And B loads again rather than serving the old value.
      expect((await b.call({ op: 'load', key: 'k', value: 'v2' })).value).toBe('v2')
    })

    it('set() and deleteByTag() also reach other instances and local tiers', async () => {
      const prefix = prefixOf('tags')
      const a = cache({ prefix })
      const b = cache({ prefix })
      await Promise.all([a.ready(), b.ready()])
      await a.getOrLoad('p:1', () => 'one', { tags: ['team:7'] })
      await a.getOrLoad('p:2', () => 'two', { tags: ['team:7', 'all'] })
      await a.getOrLoad('p:3', () => 'three', { tags: ['team:8'] })
      await settled(a)
      for (const key of ['p:1', 'p:2', 'p:3']) await b.getOrLoad(key, () => 'wrong')
      expect(hasLocal(b, 'p:1')).toBe(true)
      await a.deleteByTag('team:7')
      await waitFor('B to drop the tagged keys', async () => !hasLocal(b, 'p:1') && !hasLocal(b, 'p:2'), {
        timeoutMs: 10_000,
      })
      expect(hasLocal(b, 'p:3')).toBe(true)
      expect(await b.getOrLoad('p:1', () => 'one-again')).toBe('one-again')
      expect(await b.getOrLoad('p:3', () => 'wrong')).toBe('three')
      await a.set('p:3', 'three-v2')
      await waitFor('B to drop p:3 after set', async () => !hasLocal(b, 'p:3'), { timeoutMs: 10_000 })
      expect(await b.get('p:3')).toBe('three-v2')
    })

    it('deleteByTag during a slow tagged load prevents the stale set', async () => {
      const prefix = prefixOf('tagrace')
      const a = cache({ prefix })
      const inspect = client()
      let stale = 0
      for (let i = 0; i < 20; i++) {
        const key = `k${i}`
        const read = deferred()
        const written = deferred()
        const load = a.getOrLoad(
          key,
          async () => {
            read.resolve()
            await written.promise
            return 'old'
          },
          { tags: ['grp'] },
        )
        await read.promise
        await a.deleteByTag('grp')
        written.resolve()
        await load
        await settled(a)
        if ((await stored(inspect, prefix, key)) === 'old') stale++
      }
      expect(stale).toBe(0)
    })

    it('ctx.setTags: tags decided by the loader are deleted by deleteByTag, and a deleteByTag during the load prevents the stale set', async () => {
      const prefix = prefixOf('settags')
      const a = cache({ prefix })
      const inspect = client()
      // Membership: a late tag is a tag like any other once stored.
      await a.getOrLoad('post:1', (ctx) => {
        ctx.setTags(['author:7'])
        return 'post one'
      })
      await settled(a)
      expect(await stored(inspect, prefix, 'post:1')).toBe('post one')
      await a.deleteByTag('author:7')
      expect(await stored(inspect, prefix, 'post:1')).toBeUndefined()
      // The race: the tag is invalidated while the loader still holds the old row, before the
      // loader names the tag.
      let stale = 0
      const before = a.stats().staleSetsPrevented
      for (let i = 0; i < 20; i++) {
        const key = `late${i}`
        const read = deferred()
        const written = deferred()
        const load = a.getOrLoad(key, async (ctx) => {
          read.resolve()
          await written.promise
          ctx.setTags(['grp-late'])
          return 'old'
        })
        await read.promise
        await a.deleteByTag('grp-late')
        written.resolve()
        expect(await load).toBe('old')
        await settled(a)
        if ((await stored(inspect, prefix, key)) === 'old') stale++
      }
      expect(stale).toBe(0)
      expect(a.stats().staleSetsPrevented - before).toBe(20)
      // Bad tags fail the load with a typed error and store nothing.
      await expect(
        a.getOrLoad('bad-tags', (ctx) => {
          ctx.setTags([''])
          return 'x'
        }),
      ).rejects.toBeInstanceOf(CacheKeyError)
      expect(await stored(inspect, prefix, 'bad-tags')).toBeUndefined()
    })

    it('expires after the TTL and reloads; jitter shortens the TTL within its fraction', async () => {
      const prefix = prefixOf('ttl')
      const a = cache({ prefix, local: false })
      const inspect = client()
      let calls = 0
      const loader = () => ++calls
      // 1 s: the second read must come within the TTL even on a loaded machine.
      await a.getOrLoad('k', loader, { ttlMs: 1_000, jitter: 0 })
      expect(await a.getOrLoad('k', loader, { ttlMs: 1_000, jitter: 0 })).toBe(1)
      await waitFor(
        'the entry to expire',
        async () => (await a.getOrLoad('k', loader, { ttlMs: 1_000, jitter: 0 })) === 2,
        {
          timeoutMs: 10_000,
        },
      )
      for (let i = 0; i < 20; i++) await a.set(`j${i}`, i, { ttlMs: 100_000, jitter: 0.5 })
      const ttls = await Promise.all(
        Array.from({ length: 20 }, (_, i) => inspect.pttl(new KeyLayout(prefix).entry(`j${i}`).value)),
      )
      for (const ttl of ttls) {
        expect(ttl).toBeGreaterThan(40_000)
        expect(ttl).toBeLessThanOrEqual(100_000)
      }
      expect(new Set(ttls.map((t) => Math.round(t / 1000))).size).toBeGreaterThan(1)
    })

    it('stale-while-revalidate: serves the stale value at once and refreshes exactly once', async () => {
      const prefix = prefixOf('swr')
      const a = cache({ prefix })
      const b = cache({ prefix, local: false })
      await a.ready()
      const policy = { ttlMs: 200, jitter: 0, staleWhileRevalidateMs: 60_000 }
      await a.getOrLoad('k', () => 'v1', policy)
      await sleep(300)
      let refreshes = 0
      const refresh = deferred()
      const slowLoader = async () => {
        refreshes++
        await refresh.promise
        return 'v2'
      }
      const values = await Promise.all([
        ...Array.from({ length: 50 }, () => a.getOrLoad('k', slowLoader, policy)),
        ...Array.from({ length: 50 }, () => b.getOrLoad('k', slowLoader, policy)),
      ])
      expect(new Set(values)).toEqual(new Set(['v1']))
      refresh.resolve()
      await settled(a)
      await settled(b)
      expect(refreshes).toBe(1)
      expect(await b.getOrLoad('k', slowLoader, policy)).toBe('v2')
      expect(a.stats().staleServed).toBeGreaterThanOrEqual(1)
      expect(b.stats().staleServed).toBeGreaterThanOrEqual(1)
    })

    it('grace period: serves the stale value when the loader fails, and throws without one', async () => {
      const prefix = prefixOf('grace')
      const a = cache({ prefix })
      const boom = new Error('database down')
      const failing = async (): Promise<string> => {
        throw boom
      }
      await a.getOrLoad('k', () => 'v1', { ttlMs: 100, jitter: 0, gracePeriodMs: 60_000 })
      await sleep(200)
      expect(await a.getOrLoad('k', failing, { ttlMs: 100, jitter: 0, gracePeriodMs: 60_000 })).toBe('v1')
      expect(a.stats().loadErrors).toBe(1)
      await a.getOrLoad('n', () => 'v1', { ttlMs: 100, jitter: 0 })
      await sleep(200)
      await expect(a.getOrLoad('n', failing, { ttlMs: 100, jitter: 0 })).rejects.toBe(boom)
      // The failed load released its lease: the next call loads at once instead of waiting.
      expect(await a.getOrLoad('n', () => 'v2')).toBe('v2')
    })

    it('negative caching uses its own TTL; without it "not found" is not cached', async () => {
      const prefix = prefixOf('neg')
      const a = cache({ prefix })
      let calls = 0
      const missing = async () => {
        calls++
        return undefined
      }
      expect(await a.getOrLoad('gone', missing, { negativeTtlMs: 60_000 })).toBeUndefined()
      expect(await a.getOrLoad('gone', missing, { negativeTtlMs: 60_000 })).toBeUndefined()
      expect(calls).toBe(1)
      expect(await a.getOrLoad('gone2', missing)).toBeUndefined()
      expect(await a.getOrLoad('gone2', missing)).toBeUndefined()
      expect(calls).toBe(3)
      await a.getOrLoad('short', missing, { negativeTtlMs: 100 })
      await waitFor('the negative entry to expire', async () => {
        await a.getOrLoad('short', missing, { negativeTtlMs: 100 })
        return calls >= 5
      })
    })

    it('mset writes keys of many slots in one call and voids their loads in flight; mget reads them back across slots', async () => {
      const prefix = prefixOf('mset')
      const a = cache({ prefix })
      const b = cache({ prefix, local: false })
      const inspect = client()
      const keys = Array.from({ length: 20 }, (_, i) => `m${i}`)
      // A load of m3 in flight that read the old row: mset must win over it.
      const read = deferred()
      const written = deferred()
      const loading = a.getOrLoad('m3', async () => {
        read.resolve()
        await written.promise
        return 'stale'
      })
      await read.promise
      await a.mset(keys.map((key, i) => ({ key, value: { i }, options: { tags: ['batch'] } })))
      written.resolve()
      expect(await loading).toBe('stale')
      await settled(a)
      expect(await stored(inspect, prefix, 'm3')).toEqual({ i: 3 })
      expect(await b.mget([...keys, 'absent'])).toEqual([...keys.map((_, i) => ({ i })), undefined])
      await b.deleteByTag('batch')
      expect(await b.mget(keys)).toEqual(keys.map(() => undefined))
    })

    it('a waiter without a stale value waits a bounded time, then loads without writing', async () => {
      const prefix = prefixOf('wait')
      const a = cache({ prefix, local: false })
      const b = cache({ prefix, local: false, leaseWaitTimeoutMs: 200 })
      const release = deferred()
      const slow = a.getOrLoad('k', async () => {
        await release.promise
        return 'from-a'
      })
      await waitFor('a to hold the lease', async () => a.stats().loads === 1)
      expect(await b.getOrLoad('k', () => 'from-b')).toBe('from-b')
      expect(b.stats().coalescedWaits).toBe(1)
      release.resolve()
      expect(await slow).toBe('from-a')
      await settled(a)
      expect(await b.get('k')).toBe('from-a')
    })

    it('a waiter gets the lease holder value when it arrives in time', async () => {
      const prefix = prefixOf('wait2')
      const a = cache({ prefix, local: false })
      const b = cache({ prefix, local: false })
      const release = deferred()
      const slow = a.getOrLoad('k', async () => {
        await release.promise
        return 'from-a'
      })
      await waitFor('a to hold the lease', async () => a.stats().loads === 1)
      let bCalls = 0
      const waiting = b.getOrLoad('k', () => {
        bCalls++
        return 'from-b'
      })
      // b must really be waiting on a's lease (not arrive after a's write and simply hit).
      await waitFor('b to wait for the lease holder', async () => b.stats().coalescedWaits === 1)
      release.resolve()
      expect(await waiting).toBe('from-a')
      expect(await slow).toBe('from-a')
      expect(bCalls).toBe(0)
    })

    it('getOrLoadMany: one batch loader call for the missing keys only, results in order', async () => {
      const prefix = prefixOf('many')
      const a = cache({ prefix })
      await a.ready()
      await a.set('m:2', 'two')
      const batches: string[][] = []
      const values = await a.getOrLoadMany(['m:1', 'm:2', 'm:3', 'm:1'], async (keys) => {
        batches.push(keys)
        return new Map(keys.filter((k) => k !== 'm:3').map((k) => [k, `loaded-${k}`]))
      })
      expect(values).toEqual(['loaded-m:1', 'two', undefined, 'loaded-m:1'])
      expect(batches.map((b) => [...b].sort())).toEqual([['m:1', 'm:3']])
      const again = await a.getOrLoadMany(['m:1', 'm:2'], async () => {
        throw new Error('must not load')
      })
      expect(again).toEqual(['loaded-m:1', 'two'])
      const array = await a.getOrLoadMany(['x:1', 'x:2'], async (keys) => keys.map((k) => k.toUpperCase()))
      expect(array).toEqual(['X:1', 'X:2'])
      await expect(a.getOrLoadMany(['y:1', 'y:2'], async () => ['only-one'])).rejects.toBeInstanceOf(
        CacheBatchResultError,
      )
    })

    it('getOrLoadMany: a batch larger than the loader cap is one call; a key loaded elsewhere is waited for, not batched', async () => {
      const prefix = prefixOf('many2')
      // A long lease wait: on a slow machine z:0 must keep waiting for the other instance, not load itself.
      const small = cache({ prefix, maxConcurrentLoads: 2, leaseWaitTimeoutMs: 60_000 })
      const other = cache({ prefix, local: false })
      await Promise.all([small.ready(), other.ready()])
      const release = deferred()
      const slow = other.getOrLoad('z:0', async () => {
        await release.promise
        return 'from-other'
      })
      await waitFor('the other instance to hold the lease on z:0', async () => other.stats().loads === 1)
      const keys = Array.from({ length: 100 }, (_, i) => `z:${i}`)
      const batches: string[][] = []
      const many = small.getOrLoadMany(keys, async (ks) => {
        batches.push(ks)
        return ks.map((k) => `batch-${k}`)
      })
      await waitFor(
        'the batch to go out while z:0 is still loading elsewhere',
        async () => batches.length === 1,
      )
      expect(batches[0]).toHaveLength(99)
      release.resolve()
      const values = await many
      expect(values[0]).toBe('from-other')
      expect(values.slice(1)).toEqual(keys.slice(1).map((k) => `batch-${k}`))
      expect(await slow).toBe('from-other')
      expect(batches).toHaveLength(1)
    })

    it('an expired lease belongs to its new holder: the old holder can neither write nor release it', async () => {
      const prefix = prefixOf('lease')
      const inspect = client()
      const a = cache({ prefix, local: false, leaseTtlMs: 300 })
      const b = cache({ prefix, local: false, leaseTtlMs: 60_000 })
      // outcome of a's slow load once b has taken over: a value (a write attempt) or an error (a release).
      for (const outcome of ['value', 'error'] as const) {
        const key = `k-${outcome}`
        const leaseKey = new KeyLayout(prefix).entry(key).lease
        const releaseA = deferred()
        const releaseB = deferred()
        const loadsA = a.stats().loads
        const loadA = a.getOrLoad(key, async () => {
          await releaseA.promise
          if (outcome === 'error') throw new Error('a failed')
          return 'from-a'
        })
        await waitFor('a to hold the lease', async () => a.stats().loads === loadsA + 1)
        await waitFor("a's lease to expire", async () => (await inspect.exists(leaseKey)) === 0)
        const loadsB = b.stats().loads
        const loadB = b.getOrLoad(key, async () => {
          await releaseB.promise
          return 'from-b'
        })
        await waitFor('b to hold the lease', async () => b.stats().loads === loadsB + 1)
        const bToken = await inspect.get(leaseKey)
        expect(bToken).not.toBeNull()
        releaseA.resolve()
        if (outcome === 'value') expect(await loadA).toBe('from-a')
        else await expect(loadA).rejects.toThrow('a failed')
        await settled(a)
        expect(await inspect.get(leaseKey)).toBe(bToken) // b's lease is intact
        expect(await stored(inspect, prefix, key)).toBeUndefined() // and a wrote nothing
        releaseB.resolve()
        expect(await loadB).toBe('from-b')
        await settled(b)
        expect(await stored(inspect, prefix, key)).toBe('from-b')
      }
      expect(a.stats().staleSetsPrevented).toBe(1)
    })

    it('pluggable serializer and isolated prefixes', async () => {
      const prefix = prefixOf('ser')
      const dates = cache({
        prefix,
        serializer: {
          serialize: (value) => JSON.stringify(value),
          deserialize: (text) =>
            JSON.parse(text, (_k, v) =>
              typeof v === 'string' && /^\d{4}-\d\d-\d\dT/.test(v) ? new Date(v) : v,
            ),
        },
        local: false,
      })
      const other = cache({ prefix: prefixOf('other'), local: false })
      await dates.set('d', { at: new Date('2024-01-02T03:04:05.000Z') })
      const value = await dates.get<{ at: Date }>('d')
      expect(value?.at).toBeInstanceOf(Date)
      expect(value?.at.toISOString()).toBe('2024-01-02T03:04:05.000Z')
      expect(await other.get('d')).toBeUndefined()
    })

    it('the local tier evicts the least recently used entry by count and by bytes', async () => {
      const prefix = prefixOf('lru')
      const a = cache({ prefix, local: { maxEntries: 3, maxBytes: 2_400 } })
      await a.ready()
      for (const key of ['a', 'b', 'c']) {
        await a.getOrLoad(key, () => key)
        await settled(a) // the local fill happens when the write to Redis is done
      }
      await a.getOrLoad('a', () => 'x') // a is now most recently used
      await a.getOrLoad('d', () => 'd')
      await settled(a)
      expect(['a', 'b', 'c', 'd'].map((k) => hasLocal(a, k))).toEqual([true, false, true, true])
      await a.getOrLoad('big', () => 'x'.repeat(990))
      await settled(a)
      // Charged 2 bytes per character of key and serialized value + 160: 'a' 168, 'big' 2,150.
      // 'big' pushes out c by count, then a by bytes.
      expect(['a', 'c', 'd', 'big'].map((k) => hasLocal(a, k))).toEqual([false, false, true, true])
      expect(a.stats().localBytes).toBeLessThanOrEqual(2_400)
      expect(a.stats().localEvictions).toBe(3)
    })

    it('typed errors for bad input; nothing is left locked', async () => {
      const prefix = prefixOf('errors')
      const a = cache({ prefix })
      await expect(a.getOrLoad('', () => 1)).rejects.toBeInstanceOf(CacheKeyError)
      await expect(a.getOrLoad('k', () => 1, { ttlMs: -1 })).rejects.toBeInstanceOf(CacheOptionsError)
      await expect(a.getOrLoad('k', () => 1, { tags: [''] })).rejects.toBeInstanceOf(CacheKeyError)
      const cyclic: Record<string, unknown> = {}
      cyclic.self = cyclic
      const error = await a.getOrLoad('big', () => cyclic).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(CacheSerializationError)
      expect((error as CacheSerializationError).code).toBe('E_CACHE_SERIALIZATION')
      expect(await a.getOrLoad('big', () => 10)).toBe(10)
      expect(a.stats().coalescedWaits).toBe(0) // the failed load released its lease: nobody waited
      expect(() => createReadThroughCache({ redis: client(), prefix: 'a{b' })).toThrow(CacheOptionsError)
      expect(() => createReadThroughCache({} as ReadThroughCacheOptions)).toThrow(/E_CACHE|redis/)
      await a.close()
      await expect(a.getOrLoad('k', () => 1)).rejects.toBeInstanceOf(CacheClosedError)
    })

    it('Redis killed under load: correct values, loader concurrency under the cap, circuit opens; restarted: circuit closes and hits resume', async () => {
      const prefix = prefixOf('outage')
      const cap = 4
      const a = cache({
        prefix,
        local: false,
        commandTimeoutMs: 200,
        circuitBreaker: { failureThreshold: 3, openDurationMs: 300 },
        maxConcurrentLoads: cap,
      })
      const keys = 40
      await pool.query(
        "INSERT INTO rtc_row SELECT id, 'outage-' || id FROM generate_series(5000000, 5000000 + $1 - 1) id",
        [keys],
      )
      let active = 0
      let peak = 0
      const loader = async ({ key }: { key: string }) => {
        active++
        peak = Math.max(peak, active)
        try {
          const { rows } = await pool.query('SELECT val FROM rtc_row WHERE id = $1', [Number(key.slice(2))])
          return rows[0].val as string
        } finally {
          active--
        }
      }
      let calls = 0
      let wrong = 0
      let stop = false
      const worker = async () => {
        while (!stop) {
          const id = 5_000_000 + Math.floor(Math.random() * keys)
          const value = await a.getOrLoad(`o:${id}`, loader)
          calls++
          if (value !== `outage-${id}`) wrong++
          await sleep(1)
        }
      }
      const workers = Array.from({ length: 16 }, () => worker())
      await waitFor('warm-up', async () => a.stats().hitsRedis > 200, { timeoutMs: 60_000 })

      await env.kill()
      await waitFor('the circuit to open', async () => a.stats().circuit !== 'closed', { timeoutMs: 60_000 })
      const callsAtOpen = calls
      await waitFor('calls to go on during the outage', async () => calls > callsAtOpen + 300, {
        timeoutMs: 60_000,
      })
      const loadsDuringOutage = a.stats().loads

      await env.start()
      await waitFor('the circuit to close', async () => a.stats().circuit === 'closed', { timeoutMs: 90_000 })
      const hitsAtRecovery = a.stats().hitsRedis
      await waitFor('Redis hits to resume', async () => a.stats().hitsRedis > hitsAtRecovery + 200, {
        timeoutMs: 60_000,
      })
      stop = true
      await Promise.all(workers)
      expect(wrong).toBe(0)
      expect(peak).toBeLessThanOrEqual(cap)
      expect(a.stats().peakConcurrentLoads).toBeLessThanOrEqual(cap)
      expect(a.stats().timesCircuitOpened).toBeGreaterThanOrEqual(1)
      expect(loadsDuringOutage).toBeGreaterThan(keys) // the outage did fall through to the loader
    })
  })
}
