import { waitFor } from '@scale/testkit'
import { describe, expect, it } from 'vitest'
import { settled } from '../src/read-through-cache.js'
import { deferred, prefixOf, useCache } from './helpers/use-cache.js'

describe('a tagged load raced by deleteByTag', () => {
  const { cache, client } = useCache()

  it.each(['call tags', 'ctx.setTags'])(
    'with %s: the load never writes its value to Redis once the deleteByTag has resolved',
    async (kind) => {
      // Before, the value was written and then undone: another process's read in between got it.
      const prefix = prefixOf()
      const loading = cache({ keyPrefix: prefix })
      const writer = cache({ keyPrefix: prefix })
      await loading.ready()
      await writer.ready()
      const admin = client()
      await admin.config('SET', 'notify-keyspace-events', 'KA')
      const valueKey = `${prefix}{k}:v`
      const sentinel = `${prefix}sentinel`
      const events: string[] = []
      const sub = client()
      await sub.subscribe(`__keyspace@0__:${valueKey}`, `__keyspace@0__:${sentinel}`)
      sub.on('message', (channel: string, event: string) =>
        events.push(`${channel.split(':').at(-1)} ${event}`),
      )
      const entered = deferred()
      const gate = deferred()
      const load = loading.getOrLoad(
        'k',
        async (ctx) => {
          entered.resolve()
          await gate.promise
          if (kind === 'ctx.setTags') ctx.setTags(['team'])
          return 'old'
        },
        kind === 'call tags' ? { tags: ['team'] } : undefined,
      )
      await entered.promise
      await writer.deleteByTag('team')
      gate.resolve()
      expect(await load).toBe('old') // the caller that started the load overlapped the deleteByTag
      await settled(loading)
      await admin.set(sentinel, '1')
      await waitFor('the sentinel event', async () => events.includes('sentinel set'))
      expect(events.filter((event) => event.startsWith('v '))).toEqual([])
      expect(await writer.get('k')).toBeUndefined()
      expect(loading.stats().staleSetsPrevented).toBe(1)
      // The lease was given back: the next read loads at once.
      expect(await writer.getOrLoad('k', () => 'new', { tags: ['team'] })).toBe('new')
    },
  )
})
