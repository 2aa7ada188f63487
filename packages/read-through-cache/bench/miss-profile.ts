/**
 * The miss path alone, for `node --cpu-prof`: 16 concurrent callers, each call a key never seen
 * before (local miss, Redis miss, load, set), for BENCH_MS (default 3 s). Prints calls/s and CPU
 * µs per miss (process CPU time / misses).
 * LIB=cache-manager runs cache-manager instead; BENCH_DIST=1 runs dist/ instead of src/.
 * Run: node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/miss-profile.ts
 */

import KeyvRedis from '@keyv/redis'
import { startRedis } from '@scale/testkit'
import { createCache } from 'cache-manager'
import { Redis } from 'ioredis'
import { Keyv } from 'keyv'

// BENCH_DIST=1: the built package (run `pnpm build` first), without tsx's keepNames wrappers.
const { createReadThroughCache } = (await import(
  process.env.BENCH_DIST === '1' ? '../dist/index.js' : '../src/index.js'
)) as typeof import('../src/index.js')

const MS = Number(process.env.BENCH_MS ?? 3_000)
const server = await startRedis()
const redis = new Redis({ host: '127.0.0.1', port: server.port })
try {
  const cache = createReadThroughCache({
    redis,
    keyPrefix: 'miss:',
    ttlMs: 3_600_000,
    leases: process.env.LEASES !== '0',
    coalesceWrites: process.env.COALESCE !== '0',
  })
  await cache.ready()
  const value = { id: 42, name: 'Ada Lovelace', email: 'ada@example.com', roles: ['admin'], active: true }
  const load = async () => value
  // LIB=cache-manager: the same loop through cache-manager (memory + Redis stores), for comparison.
  const cm =
    process.env.LIB === 'cache-manager'
      ? createCache({
          stores: [new Keyv(), new Keyv({ store: new KeyvRedis(`redis://127.0.0.1:${server.port}`) })],
        })
      : undefined
  const get = cm
    ? (key: string) => cm.wrap(key, load, 3_600_000)
    : (key: string) => cache.getOrLoad(key, load)
  let next = 0
  const cpu = process.cpuUsage()
  const end = performance.now() + MS
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (performance.now() < end) await get(`k:${next++}`)
    }),
  )
  const used = process.cpuUsage(cpu)
  const us = (used.user + used.system) / next
  process.stdout.write(
    `misses ${next}, ${Math.round(next / (MS / 1000))}/s, ${us.toFixed(1)} µs CPU per miss\n`,
  )
  await cache.close()
  await cm?.disconnect()
} finally {
  redis.disconnect()
  await server.dispose()
}
