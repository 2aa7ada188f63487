/**
 * The miss path alone, for `node --cpu-prof`: CONCURRENCY (default 16) concurrent callers, each
 * call a key never seen before (local miss, Redis miss, load, set), for BENCH_MS (default 3 s).
 * Prints calls/s, this process's CPU µs per miss and Redis' (its `used_cpu_*` over the run / misses):
 * with one caller set on one connection the two mostly take turns, so a miss costs about their sum.
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
const admin = new Redis({ host: '127.0.0.1', port: server.port })
/** Redis' own CPU seconds so far (user + system). */
const redisCpu = async () => {
  const info = await admin.info('cpu')
  const read = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0)
  return read('used_cpu_user') + read('used_cpu_sys')
}
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
  // Warm up (JIT, and the cache's miss-rate estimate) before measuring, both libraries alike.
  for (let i = 0; i < 2_000; i++) await get(`warm:${i}`)
  let next = 0
  const redisBefore = await redisCpu()
  const cpu = process.cpuUsage()
  const end = performance.now() + MS
  await Promise.all(
    Array.from({ length: Number(process.env.CONCURRENCY ?? 16) }, async () => {
      while (performance.now() < end) await get(`k:${next++}`)
    }),
  )
  const used = process.cpuUsage(cpu)
  const redisUs = ((await redisCpu()) - redisBefore) * 1e6
  const us = (used.user + used.system) / next
  process.stdout.write(
    `misses ${next}, ${Math.round(next / (MS / 1000))}/s, CPU per miss ${us.toFixed(1)} µs here, ${(redisUs / next).toFixed(1)} µs in Redis\n`,
  )
  await cache.close()
  await cm?.disconnect()
} finally {
  redis.disconnect()
  admin.disconnect()
  await server.dispose()
}
