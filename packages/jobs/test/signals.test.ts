import { uniqueName, useRedis } from '@scale/testkit/vitest'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createWorker, defineJob, shutdownOnSignal } from '../src/index.js'
import { jobsClient } from './helpers.js'

const env = useRedis({ connect: jobsClient })

const listeners = () => ({ term: process.listenerCount('SIGTERM'), int: process.listenerCount('SIGINT') })

describe('signals are opt-in', () => {
  it('a worker installs no signal handler unless asked, and removes the ones it was asked for on close', async () => {
    const job = defineJob({ name: 'j', queue: uniqueName('sig-'), schema: z.object({}), handler: () => {} })
    const before = listeners()
    const quiet = createWorker({ connection: env.redis, jobs: [job] })
    expect(listeners()).toEqual(before)
    await quiet.close()

    const asked = createWorker({ connection: env.redis, jobs: [job], shutdown: { signals: ['SIGTERM'] } })
    expect(listeners()).toEqual({ ...before, term: before.term + 1 })
    await asked.close()
    expect(listeners()).toEqual(before)
  })

  it('shutdownOnSignal closes every target once on the first signal and exits only if asked', async () => {
    const closed: string[] = []
    const seen: string[] = []
    const target = (name: string) => ({
      close: async () => {
        closed.push(name)
      },
    })
    const before = listeners()
    const remove = shutdownOnSignal([target('worker'), target('relay')], {
      exitProcess: false,
      onSignal: (signal) => seen.push(signal),
    })
    expect(listeners()).toEqual({ term: before.term + 1, int: before.int + 1 })
    // The handler as Node calls it (a real SIGTERM to a child process is in worker-crash.test.ts).
    process.emit('SIGTERM', 'SIGTERM')
    process.emit('SIGINT', 'SIGINT')
    await new Promise((resolve) => setImmediate(resolve))
    expect(seen).toEqual(['SIGTERM'])
    expect(closed.sort()).toEqual(['relay', 'worker'])
    remove()
    expect(listeners()).toEqual(before)
  })
})
