import { waitFor } from '@scale/testkit'
import { describe, expect, it } from 'vitest'
import { createReadThroughCache, type ReadThroughCache } from '../src/index.js'
import { KeyLayout } from '../src/key-layout.js'
import { hasLocal, settled } from '../src/read-through-cache.js'
import { ChildCache } from './helpers/child-cache.js'
import { prefixOf, useCache } from './helpers/use-cache.js'

// Redis with an append-only file synced on every write, so a kill -9 loses nothing: the old
// values are still there when it comes back, and only the replay of the queued invalidations can
// remove them.
describe('invalidations queued during an outage, replayed by an idle process', () => {
  const env = useCache({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] })

  it('a process that deletes a key and a tag while Redis is down and then does nothing replays both once Redis is back', async () => {
    const prefix = prefixOf()
    const layout = new KeyLayout(prefix)
    const readerOptions = { prefix, commandTimeoutMs: 300, circuitBreaker: { openDurationMs: 200 } }
    const a: ReadThroughCache = createReadThroughCache({ redis: env.client(), ...readerOptions })
    const b: ReadThroughCache = createReadThroughCache({
      redis: env.client(),
      ...readerOptions,
      local: false,
    })
    // The idle process: a short command timeout and a circuit that opens at the first failure, so
    // its delete and deleteByTag are refused at once and never reach the client's offline queue.
    const idle = new ChildCache({
      target: { kind: 'single', port: env.server.port },
      prefix,
      leases: true,
      options: { commandTimeoutMs: 300, circuitBreaker: { failureThreshold: 1, openDurationMs: 60_000 } },
    })
    try {
      await Promise.all([a.ready(), b.ready(), idle.ready])
      expect(await a.getOrLoad('k', () => 'v1')).toBe('v1')
      expect(await a.getOrLoad('t', () => 't1', { tags: ['grp'] })).toBe('t1')
      await settled(a)
      expect(await b.get('k')).toBe('v1')
      expect(hasLocal(a, 'k')).toBe(true)

      await env.server.kill()
      // Opens the idle process's circuit (a read fails), then both invalidations are queued.
      expect((await idle.call({ op: 'get', key: 'k' })).value).toBeUndefined()
      expect(await idle.call({ op: 'delete', key: 'k' })).toMatchObject({ queuedForReplay: true })
      expect(await idle.call({ op: 'deleteByTag', tag: 'grp' })).toMatchObject({ queuedForReplay: true })
      const during = (await idle.call({ op: 'stats' })).stats as Record<string, unknown>
      expect(during).toMatchObject({ circuit: 'open', pendingInvalidations: 2 })

      // From here on the idle process gets no call at all. Its circuit's open period (60 s) is far
      // longer than this test may take: only the reconnection can trigger the replay.
      await env.server.start()
      const raw = env.client()
      await waitFor(
        'the idle process to replay the delete and the deleteByTag by itself',
        async () =>
          (await raw.exists(layout.entry('k').value)) === 0 &&
          (await raw.exists(layout.entry('t').value)) === 0,
        { timeoutMs: 30_000, intervalMs: 20 },
      )
      // Every other process now reads the new value, from Redis or (for a) its local tier.
      await waitFor('a to close its circuit', async () => {
        await a.get('probe')
        return a.stats().circuit === 'closed'
      })
      await waitFor('b to close its circuit', async () => {
        await b.get('probe')
        return b.stats().circuit === 'closed'
      })
      expect(await a.getOrLoad('k', () => 'v2')).toBe('v2')
      expect(await b.getOrLoad('t', () => 't2', { tags: ['grp'] })).toBe('t2')
      expect(((await idle.call({ op: 'stats' })).stats as Record<string, unknown>).pendingInvalidations).toBe(
        0,
      )
    } finally {
      await Promise.all([a.close(), b.close(), idle.close()])
    }
  })

  it('a hung (paused) Redis never reconnects: the replay timer alone delivers the queued delete after it resumes', async () => {
    const prefix = prefixOf()
    const layout = new KeyLayout(prefix)
    const cache = createReadThroughCache({
      redis: env.client(),
      prefix,
      commandTimeoutMs: 200,
      circuitBreaker: { failureThreshold: 1, openDurationMs: 200 },
    })
    try {
      await cache.ready()
      await cache.set('k', 'v1')
      env.server.pause()
      // A read times out and opens the circuit: the delete is then refused without being sent.
      expect(await cache.get('other')).toBeUndefined()
      expect(cache.stats().circuit).toBe('open')
      await expect(cache.delete('k')).rejects.toMatchObject({ context: { queuedForReplay: true } })
      env.server.resume()
      const raw = env.client()
      await waitFor(
        'the timer to replay the delete',
        async () =>
          cache.stats().pendingInvalidations === 0 && (await raw.exists(layout.entry('k').value)) === 0,
        { timeoutMs: 30_000 },
      )
      expect(cache.stats().circuit).toBe('closed')
    } finally {
      env.server.resume()
      await cache.close()
    }
  })
})
