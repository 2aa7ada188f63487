/**
 * The cost of joining a load (a hot key that misses): each round, CALLERS concurrent getOrLoad
 * of one new key in one process, so one caller loads and the others join its flight. Prints
 * callers/s and how many loader calls a round made (1 = single flight held), for BENCH_MS (default
 * 3 s), and a final `BENCH {json}` line. CACHE_SRC=path/to/src/index.ts runs another copy of the
 * package (e.g. main's) for a before/after pair.
 * Run: node --import tsx bench/hot-key-join.ts
 */

import { startRedis } from '@scale/testkit'
import { Redis } from 'ioredis'

const MS = Number(process.env.BENCH_MS ?? 3_000)
const CALLERS = Number(process.env.CALLERS ?? 200)
const src = process.env.CACHE_SRC ?? '../src/index.js'
const { createReadThroughCache } = (await import(src)) as typeof import('../src/index.js')
const server = await startRedis()
const redis = new Redis({ host: '127.0.0.1', port: server.port })
try {
  const cache = createReadThroughCache({ redis, keyPrefix: 'hot:', ttlMs: 3_600_000, local: false })
  await cache.ready()
  let loads = 0
  const load = async () => {
    loads++
    await new Promise((resolve) => setImmediate(resolve))
    return { id: 42, name: 'Ada Lovelace' }
  }
  let rounds = 0
  let calls = 0
  const until = Date.now() + MS
  const started = process.hrtime.bigint()
  while (Date.now() < until) {
    const key = `k${rounds++}`
    const round: Promise<unknown>[] = []
    for (let i = 0; i < CALLERS; i++) round.push(cache.getOrLoad(key, load))
    await Promise.all(round)
    calls += CALLERS
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const summary = {
    callersPerSecond: Math.round(calls / seconds),
    loadsPerRound: loads / rounds,
    joinsRetried: (cache.stats() as { joinsRetried?: number }).joinsRetried ?? 0,
  }
  process.stdout.write(`hot key, ${CALLERS} callers per round: ${JSON.stringify(summary)}\n`)
  process.stdout.write(`BENCH ${JSON.stringify(summary)}\n`)
  await cache.close()
} finally {
  redis.disconnect()
  await server.dispose()
}
