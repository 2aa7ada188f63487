import { waitFor } from '@scale/testkit'
import { afterAll, describe, expect, it } from 'vitest'
import { CacheClosedError, CacheUnavailableError, createReadThroughCache } from '../src/index.js'
import { KeyLayout } from '../src/key-layout.js'
import { hasLocal, settled } from '../src/read-through-cache.js'
import { prefixOf, useCache } from './helpers/use-cache.js'

// A hung Redis (SIGSTOP: connections stay open, nothing answers) is the case a crash does not
// cover: only the command timeout notices it. Data survives the pause, so this is also where the
// replay of invalidations queued during the outage can be observed.
describe('read-through cache with a hung Redis', () => {
  const env = useCache()

  afterAll(() => {
    // A test that fails while Redis is paused must not leave it stopped for the server's own stop.
    env.server.resume()
  })

  it('times out, opens the circuit, serves from the loader; a delete made meanwhile is replayed on recovery', async () => {
    const prefix = prefixOf()
    const options = {
      prefix,
      commandTimeoutMs: 200,
      circuitBreaker: { failureThreshold: 2, openDurationMs: 200 },
    }
    const transitions: string[] = []
    const metrics = { increment: () => {}, circuitState: (state: string) => transitions.push(state) }
    const a = createReadThroughCache({ redis: env.client(), ...options, metrics })
    const b = createReadThroughCache({ redis: env.client(), ...options })
    await Promise.all([a.ready(), b.ready()])
    expect(await a.getOrLoad('k', () => 'v1')).toBe('v1')
    expect(await a.getOrLoad('t', () => 'tagged', { tags: ['grp'] })).toBe('tagged')
    await settled(a)
    const raw = env.client()
    expect(await raw.get(new KeyLayout(prefix).entry('t').value)).not.toBeNull()
    expect(await b.getOrLoad('k', () => 'wrong')).toBe('v1')
    expect(hasLocal(b, 'k')).toBe(true)

    env.server.pause()
    // A start-up during the outage does not hang.
    const late = createReadThroughCache({ redis: env.client(), ...options })
    await expect(late.ready(300)).rejects.toBeInstanceOf(CacheUnavailableError)
    // close() ends a ready() still waiting (its timer would otherwise hold the process up to 60 s).
    const waiting = expect(late.ready(60_000)).rejects.toBeInstanceOf(CacheClosedError)
    await late.close() // and neither does a shutdown
    await waiting
    // Loads go on: every call gets the loader's value although Redis does not answer.
    for (let i = 0; i < 10; i++)
      expect(await a.getOrLoad(`other:${i}`, () => `loaded-${i}`)).toBe(`loaded-${i}`)
    expect(a.stats().circuit).not.toBe('closed')
    expect(a.stats().redisErrors).toBeGreaterThanOrEqual(2)
    const error = await a.delete('k').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(CacheUnavailableError)
    expect((error as CacheUnavailableError).context.queuedForReplay).toBe(true)
    await expect(a.deleteByTag('grp')).rejects.toBeInstanceOf(CacheUnavailableError)
    expect(a.stats().pendingInvalidations).toBe(2)

    env.server.resume()
    // The next command after the open period is the probe, and the probe is the replay.
    await waitFor('the circuit to close', async () => {
      await a.get('probe')
      return a.stats().circuit === 'closed'
    })
    expect(a.stats().pendingInvalidations).toBe(0)
    // The metrics hook saw the circuit open, probe and close.
    expect(transitions).toContain('open')
    expect(transitions).toContain('half-open')
    expect(transitions.at(-1)).toBe('closed')
    expect(await raw.get(new KeyLayout(prefix).entry('k').value)).toBeNull()
    expect(await raw.get(new KeyLayout(prefix).entry('t').value)).toBeNull() // the tag was replayed too
    // The replay was published too: the other instance's local copy is gone.
    await waitFor('b to drop k', async () => !hasLocal(b, 'k'))
    expect(await b.getOrLoad('k', () => 'v2')).toBe('v2')
    await Promise.all([a.close(), b.close()])
  })

  it('a tagged load whose write times out has the key invalidated on recovery (it may have landed outside its tag)', async () => {
    const prefix = prefixOf()
    const a = createReadThroughCache({
      redis: env.client(),
      prefix,
      commandTimeoutMs: 200,
      circuitBreaker: { failureThreshold: 2, openDurationMs: 200 },
    })
    await a.ready()
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const load = a.getOrLoad(
      'w',
      async () => {
        await released
        return 'loaded'
      },
      { tags: ['grp-w'] },
    )
    await waitFor('the load to hold the lease', async () => a.stats().loads === 1)
    env.server.pause()
    release()
    expect(await load).toBe('loaded') // answered before the write
    await settled(a) // the lease-guarded write timed out, but it sits in the paused server's socket
    expect(a.stats().pendingInvalidations).toBe(1)
    env.server.resume() // the write now lands, without its tag membership
    await waitFor('the queued invalidation to be replayed', async () => {
      await a.get('probe')
      return a.stats().pendingInvalidations === 0
    })
    expect(await env.client().get(new KeyLayout(prefix).entry('w').value)).toBeNull()
    await a.close()
  })

  it('a process whose subscriber connection drops re-subscribes, starts its local tier afresh and receives invalidations again', async () => {
    const prefix = prefixOf()
    const a = createReadThroughCache({ redis: env.client(), prefix })
    const b = createReadThroughCache({ redis: env.client(), prefix })
    await Promise.all([a.ready(), b.ready()])
    await b.getOrLoad('before', () => 'v1')
    await settled(b)
    expect(hasLocal(b, 'before')).toBe(true)
    await env.server.command('client', 'kill', 'type', 'pubsub')
    // Invalidations sent while it was away are lost to it, so the re-subscribed process drops everything.
    await waitFor('b to re-subscribe and clear its local tier', async () => !hasLocal(b, 'before'), {
      timeoutMs: 30_000,
    })
    await b.getOrLoad('after', () => 'v1')
    await settled(b)
    expect(hasLocal(b, 'after')).toBe(true)
    await a.delete('after')
    await waitFor(
      'the invalidation to reach b over the new subscription',
      async () => !hasLocal(b, 'after'),
      {
        timeoutMs: 30_000,
      },
    )
    await Promise.all([a.close(), b.close()])
  })

  it('close() releases its own connection and leaves the user client open', async () => {
    const clientCount = async () =>
      String(await env.server.command('client', 'list'))
        .trim()
        .split('\n').length
    const redis = env.client()
    await redis.ping()
    const before = await clientCount()
    const cache = createReadThroughCache({ redis, prefix: 'close:' })
    await cache.ready()
    expect(await clientCount()).toBe(before + 1) // the invalidation subscriber
    await cache.getOrLoad('k', () => 1)
    await cache.close()
    await waitFor('the subscriber connection to go', async () => (await clientCount()) === before)
    expect(await redis.ping()).toBe('PONG')
  })
})
