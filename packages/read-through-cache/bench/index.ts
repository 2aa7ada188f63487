/**
 * @scale/read-through-cache vs bentocache 1.6.0 vs cache-manager 7.2.9, one process, one Redis
 * (testkit, free port). Rows: local-tier hit, Redis-tier hit, miss then set. Two floors show what
 * no cache can beat: a bare lru-cache get behind an async call (local hit) and a raw ioredis GET
 * plus JSON.parse (Redis hit), both with the same concurrency. Each row runs every
 * library for the same wall time with the same concurrency, in many short interleaved rounds, so
 * that load from other processes on the machine hits all libraries alike; ops/s is the total over
 * all rounds and p50 is over every call. Prints a table with ratios and a final `BENCH {json}` line.
 * `pnpm bench` builds first and runs dist/ (BENCH_SRC=1: src/).
 */
import KeyvRedis from '@keyv/redis'
import { startRedis } from '@scale/testkit'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis'
import { createCache } from 'cache-manager'
import { Redis } from 'ioredis'
import { Keyv } from 'keyv'
import { LRUCache } from 'lru-cache'

// The built package by default, as the other libraries run (their published JS): under tsx the
// sources carry its `keepNames` wrappers, about a quarter of our miss path's CPU. BENCH_SRC=1
// runs src/ instead (comparable with the figures of earlier notes).
const { createReadThroughCache } = (await import(
  process.env.BENCH_SRC === '1' ? '../src/index.js' : '../dist/index.js'
)) as typeof import('../src/index.js')

const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 250)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8)
const CONCURRENCY = 16
const KEYS = 1_000
const value = {
  id: 42,
  name: 'Ada Lovelace',
  email: 'ada@example.com',
  roles: ['admin', 'author'],
  active: true,
}

type Op = (i: number) => Promise<unknown>
interface Result {
  opsPerSec: number
  p50us: number
}

/** Runs `op` for one round, appending each call's latency (ms); returns the round's wall time. */
async function round(op: Op, latencies: number[], counter: { next: number }): Promise<number> {
  const started = performance.now()
  const end = started + ROUND_MS
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const i = counter.next++
        const t = performance.now()
        await op(i)
        latencies.push(performance.now() - t)
      }
    }),
  )
  return performance.now() - started
}

function summarize(latencies: number[], elapsedMs: number): Result {
  latencies.sort((a, b) => a - b)
  return {
    opsPerSec: Math.round((latencies.length / elapsedMs) * 1000),
    p50us: Math.round((latencies[Math.floor(latencies.length / 2)] ?? 0) * 1000),
  }
}

const server = await startRedis()
const clients: Redis[] = []
const connect = () => {
  const c = new Redis({ host: '127.0.0.1', port: server.port })
  clients.push(c)
  return c
}

try {
  // --- contenders, each with a local+Redis configuration and a Redis-only one ---
  const oursLocal = createReadThroughCache({ redis: connect(), keyPrefix: 'ours-l:', ttlMs: 3_600_000 })
  const oursRedis = createReadThroughCache({
    redis: connect(),
    keyPrefix: 'ours-r:',
    ttlMs: 3_600_000,
    local: false,
  })
  await Promise.all([oursLocal.ready(), oursRedis.ready()])

  const bento = new BentoCache({
    default: 'tiered',
    ttl: '1h',
    stores: {
      tiered: bentostore()
        .useL1Layer(memoryDriver({ maxItems: 100_000 }))
        .useL2Layer(redisDriver({ connection: connect(), prefix: 'bento-l' }))
        .useBus(redisBusDriver({ connection: { host: '127.0.0.1', port: server.port } })),
      l2: bentostore().useL2Layer(redisDriver({ connection: connect(), prefix: 'bento-r' })),
    },
  })
  const bentoLocal = bento.use('tiered')
  const bentoRedis = bento.use('l2')

  const redisUrl = `redis://127.0.0.1:${server.port}`
  const cmLocal = createCache({
    stores: [new Keyv(), new Keyv({ store: new KeyvRedis(redisUrl), namespace: 'cm-l' })],
    ttl: 3_600_000,
  })
  const cmRedis = createCache({
    stores: [new Keyv({ store: new KeyvRedis(redisUrl), namespace: 'cm-r' })],
    ttl: 3_600_000,
  })

  // The floors: what a local hit and a Redis hit cost with nothing but the data structure / the GET.
  const lru = new LRUCache<string, typeof value>({ max: 100_000 })
  const rawRedis = connect()
  const pipelinedRedis = new Redis({ host: '127.0.0.1', port: server.port, enableAutoPipelining: true })
  clients.push(pipelinedRedis)

  const load = async () => value
  const key = (i: number) => `user:${i % KEYS}`
  const floors = {
    'floor: lru-cache get (async)': {
      local: async (i: number) => {
        const k = key(i)
        const hit = lru.get(k)
        if (hit !== undefined) return hit
        lru.set(k, value)
        return value
      },
    },
    'floor: ioredis GET+JSON.parse': {
      redis: async (i: number) => {
        const text = await rawRedis.get(`raw:${key(i)}`)
        return text === null ? undefined : JSON.parse(text)
      },
    },
    // The same with ioredis' own batching of the commands of one turn, which is what the cache's
    // coalesceWrites does on the user's client: the fair floor for it.
    'floor: same, autopipelined': {
      redis: async (i: number) => {
        const text = await pipelinedRedis.get(`raw:${key(i)}`)
        return text === null ? undefined : JSON.parse(text)
      },
    },
  } satisfies Record<string, Partial<Record<'local' | 'redis' | 'miss', Op>>>
  for (let i = 0; i < KEYS; i++) await rawRedis.set(`raw:${key(i)}`, JSON.stringify(value))
  const libraries = {
    '@scale/read-through-cache': {
      local: (i: number) => oursLocal.getOrLoad(key(i), load),
      redis: (i: number) => oursRedis.getOrLoad(key(i), load),
      miss: (i: number) => oursLocal.getOrLoad(`miss:${i}`, load),
    },
    bentocache: {
      local: (i: number) => bentoLocal.getOrSet({ key: key(i), factory: load }),
      redis: (i: number) => bentoRedis.getOrSet({ key: key(i), factory: load }),
      miss: (i: number) => bentoLocal.getOrSet({ key: `miss:${i}`, factory: load }),
    },
    'cache-manager': {
      local: (i: number) => cmLocal.wrap(key(i), load),
      redis: (i: number) => cmRedis.wrap(key(i), load),
      miss: (i: number) => cmLocal.wrap(`miss:${i}`, load),
    },
  } satisfies Record<string, Record<'local' | 'redis' | 'miss', Op>>
  const contenders: Record<string, Partial<Record<'local' | 'redis' | 'miss', Op>>> = {
    ...libraries,
    ...floors,
  }
  type Library = string

  // Warm every cache with the hit keys (and check each returns the value).
  for (const lib of Object.values(contenders)) {
    for (let i = 0; i < KEYS; i++) {
      const local = await lib.local?.(i)
      const redis = await lib.redis?.(i)
      for (const got of [local, redis]) {
        if (got !== undefined && (got as typeof value).name !== value.name) throw new Error('wrong value')
      }
    }
  }

  // BENCH_ROWS=miss (comma-separated) runs only those rows: for profiling one path.
  const only = process.env.BENCH_ROWS?.split(',')
  const rows = (
    [
      ['local', 'local-tier hit'],
      ['redis', 'Redis-tier hit'],
      ['miss', 'miss then set'],
    ] as const
  ).filter(([row]) => only === undefined || only.includes(row))
  const results: Record<string, Record<Library, Result>> = {}
  for (const [row, label] of rows) {
    const names = Object.keys(contenders).filter((name) => contenders[name]?.[row] !== undefined)
    const latencies = Object.fromEntries(names.map((name) => [name, [] as number[]]))
    const elapsed: Record<string, number> = Object.fromEntries(names.map((name) => [name, 0]))
    // Miss keys never repeat (each library has its own counter far from the hit keys).
    const counters = Object.fromEntries(names.map((name) => [name, { next: row === 'miss' ? 1e9 : 0 }]))
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate the order so no library always runs right after another's garbage.
      for (let n = 0; n < names.length; n++) {
        const name = names[(n + r) % names.length] as string
        const op = contenders[name]?.[row] as Op
        elapsed[name] =
          (elapsed[name] ?? 0) + (await round(op, latencies[name] ?? [], counters[name] ?? { next: 0 }))
      }
    }
    results[label] = Object.fromEntries(
      names.map((name) => [name, summarize(latencies[name] ?? [], elapsed[name] ?? 1)]),
    )
  }

  const pad = (text: string, n: number) => text.padEnd(n)
  console.log(
    `\nconcurrency ${CONCURRENCY}, ${ROUNDS} interleaved rounds of ${ROUND_MS} ms per library and row, Redis on loopback\n`,
  )
  console.log(
    `${pad('row', 16)}${pad('library', 32)}${pad('ops/s', 10)}${pad('p50 µs', 9)}${pad('ours vs this (ops/s)', 22)}ours vs this (p50)`,
  )
  const summary: Record<string, unknown> = {}
  for (const [label, byLib] of Object.entries(results)) {
    const ours = byLib['@scale/read-through-cache'] as Result
    for (const [name, r] of Object.entries(byLib)) {
      console.log(
        `${pad(label, 16)}${pad(name, 32)}${pad(String(r.opsPerSec), 10)}${pad(String(r.p50us), 9)}${pad(`${(ours.opsPerSec / r.opsPerSec).toFixed(2)}x`, 22)}${(r.p50us / Math.max(1, ours.p50us)).toFixed(2)}x faster`,
      )
    }
    const ratio = (name: string) => {
      const other = byLib[name]
      return other === undefined ? undefined : +(ours.opsPerSec / other.opsPerSec).toFixed(2)
    }
    summary[label] = {
      ...byLib,
      opsRatioVsBentocache: ratio('bentocache'),
      opsRatioVsCacheManager: ratio('cache-manager'),
      opsRatioVsFloor: ratio('floor: lru-cache get (async)') ?? ratio('floor: ioredis GET+JSON.parse'),
    }
  }
  await Promise.all([oursLocal.close(), oursRedis.close()])
  await bento.disconnectAll()
  await Promise.all([cmLocal.disconnect(), cmRedis.disconnect()])
  console.log(
    `BENCH ${JSON.stringify({ concurrency: CONCURRENCY, roundMs: ROUND_MS, rounds: ROUNDS, rows: summary })}`,
  )
} finally {
  for (const c of clients) c.disconnect()
  await server.dispose()
}
