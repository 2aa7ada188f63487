import { describe, expect, it } from 'vitest'
import type { ReadThroughCacheOptions } from '../src/index.js'
import { deferred, prefixOf, useCache } from './helpers/use-cache.js'

const env = useCache()
const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Two processes of one fleet: each its own cache on its own ioredis client, one key space. */
function twoProcesses(local: NonNullable<ReadThroughCacheOptions['local']>) {
  const keyPrefix = prefixOf()
  return { a: env.cache({ keyPrefix, local }), b: env.cache({ keyPrefix, local }) }
}

const tiers = [
  ['local: false', false],
  ['local on', { maxEntries: 100 }],
] as const

describe.each(tiers)('a call begun after another process wrote the key (%s)', (_name, local) => {
  it('does not get the pre-write value of a load it joined (set)', async () => {
    const { a, b } = twoProcesses(local)
    await Promise.all([a.ready(), b.ready()])
    const gate = deferred()
    const first = b.getOrLoad('user:1', async () => {
      await gate.promise
      return 'old row'
    })
    await tick(30) // b's load holds the lease
    await a.set('user:1', 'new row')
    // Begun after set() resolved, before b heard of it (local on: the pub/sub message may lag).
    const late = b.getOrLoad('user:1', async () => 'loaded again')
    gate.resolve()
    expect(await first).toBe('old row') // it overlapped the write: either value is allowed
    expect(await late).toBe('new row')
    expect(await a.get('user:1')).toBe('new row')
  })

  it('does not get the pre-write value of a load it joined (delete, deleteByTag)', async () => {
    const { a, b } = twoProcesses(local)
    await Promise.all([a.ready(), b.ready()])
    for (const write of [() => a.delete('user:2'), () => a.deleteByTag('users')]) {
      const gate = deferred()
      const first = b.getOrLoad(
        'user:2',
        async () => {
          await gate.promise
          return 'old row'
        },
        { tags: ['users'] },
      )
      await tick(30)
      await write()
      const late = b.getOrLoad('user:2', async () => 'loaded after the write', { tags: ['users'] })
      gate.resolve()
      await first
      expect(await late).toBe('loaded after the write')
      await a.delete('user:2')
    }
  })

  it('does not get the pre-write "not found" of a load it joined', async () => {
    const { a, b } = twoProcesses(local)
    await Promise.all([a.ready(), b.ready()])
    const gate = deferred()
    const first = b.getOrLoad('user:3', async () => {
      await gate.promise
      return undefined
    })
    await tick(30)
    await a.set('user:3', 'created')
    const late = b.getOrLoad('user:3', async () => 'loaded again')
    gate.resolve()
    expect(await first).toBeUndefined()
    expect(await late).toBe('created')
  })

  it('keeps one load for callers that really overlap it (no write)', async () => {
    const { b } = twoProcesses(local)
    await b.ready()
    const gate = deferred()
    let calls = 0
    const loader = async () => {
      calls++
      await gate.promise
      return 'row'
    }
    const callers = [b.getOrLoad('user:4', loader)]
    await tick(30)
    for (let i = 0; i < 49; i++) callers.push(b.getOrLoad('user:4', loader))
    gate.resolve()
    expect(await Promise.all(callers)).toEqual(Array(50).fill('row'))
    expect(calls).toBe(1)
    expect(b.stats()).toMatchObject({ coalescedWaits: 49, joinsRetried: 0 })
  })
})
