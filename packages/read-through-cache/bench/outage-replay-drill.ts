/**
 * Drill: how soon after Redis comes back do the other processes stop reading a value that an
 * IDLE process invalidated during the outage? Redis (append-only, so a kill -9 keeps the old
 * value) is killed; a child process deletes the key while it is down and then does nothing;
 * Redis is restarted after `OUTAGE_MS`. Two readers in this process (default ioredis clients, one
 * with a local tier, one without) read the key every 5 ms. Prints, per run, when the old value
 * left Redis (deleted, or already replaced by a reader's new load) and when the last old value was read, both counted from the restart (the moment the
 * server answers PING; it may still be loading its append-only file, and an ioredis client that
 * catches it loading waits a second before it calls itself ready), and `BENCH {json}`.
 */
import { randomBytes } from 'node:crypto'
import { startRedis } from '@scale/testkit'
import { Redis } from 'ioredis'
import { createReadThroughCache } from '../src/index.js'
import { KeyLayout } from '../src/key-layout.js'
import { ChildCache } from '../test/helpers/child-cache.js'

const OUTAGE_MS = Number(process.env.OUTAGE_MS ?? 10_000)
const RUNS = Number(process.env.RUNS ?? 3)
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const server = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] })
const results: { oldValueGoneMs: number; lastOldReadMs: number; oldReadsAfterRestart: number }[] = []
try {
  for (let run = 0; run < RUNS; run++) {
    const prefix = `drill${randomBytes(3).toString('hex')}:`
    // The observer polls with no ready check of its own (ioredis waits a whole second when it
    // catches the restarted server loading its data), so it sees the key go when it goes.
    const clients = [0, 1, 2].map((i) => {
      const c = new Redis({
        host: '127.0.0.1',
        port: server.port,
        ...(i === 0 ? { enableReadyCheck: false, retryStrategy: () => 5 } : {}),
      })
      c.on('error', () => {})
      return c
    })
    const [rawClient, clientA, clientB] = clients as [Redis, Redis, Redis]
    const a = createReadThroughCache({ redis: clientA, prefix })
    const b = createReadThroughCache({ redis: clientB, prefix, local: false })
    const idle = new ChildCache({
      target: { kind: 'single', port: server.port },
      prefix,
      leases: true,
      options: { circuitBreaker: { failureThreshold: 1 } },
    })
    await Promise.all([a.ready(), b.ready(), idle.ready])
    await a.set('k', 'old')
    let restartedAt = Number.POSITIVE_INFINITY
    let lastOldRead = 0
    let oldReadsAfterRestart = 0
    let stop = false
    const reader = async (cache: typeof a) => {
      while (!stop) {
        const value = await cache.getOrLoad('k', () => 'new')
        if (value === 'old') {
          lastOldRead = performance.now()
          if (lastOldRead > restartedAt) oldReadsAfterRestart++
        }
        await sleep(5)
      }
    }
    const readers = [reader(a), reader(b)]
    await sleep(200)
    await server.kill()
    await idle.call({ op: 'get', key: 'k' }) // opens its circuit
    await idle.call({ op: 'delete', key: 'k' }) // queued; from now on the child gets no call
    await sleep(OUTAGE_MS)
    await server.start()
    restartedAt = performance.now()
    let oldGone = Number.NaN
    const valueKey = new KeyLayout(prefix).entry('k').value
    for (;;) {
      // Gone, or already refilled by a reader with the new value.
      const text = await rawClient.get(valueKey).catch(() => 'unknown')
      if (text === null || (text !== 'unknown' && !text.endsWith('v"old"'))) {
        oldGone = performance.now()
        break
      }
      await sleep(5)
    }
    await sleep(3_000)
    stop = true
    await Promise.all(readers)
    results.push({
      oldValueGoneMs: Math.round(oldGone - restartedAt),
      lastOldReadMs: Math.max(0, Math.round(lastOldRead - restartedAt)),
      oldReadsAfterRestart,
    })
    console.log(`run ${run + 1}:`, results.at(-1))
    await Promise.all([a.close(), b.close(), idle.close()])
    for (const c of clients) c.disconnect()
  }
} finally {
  await server.dispose()
}
console.log(`BENCH ${JSON.stringify({ outageMs: OUTAGE_MS, runs: results })}`)
