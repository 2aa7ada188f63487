import { waitFor } from '@scale/testkit'
import { describe, expect, it } from 'vitest'
import { deadlineQueue, type PendingDeadline } from '../src/index.js'

// A third outside user's check of the exported deadline queue (see the read-through cache's
// outside-user-3 test for the same defect through getOrLoad); counts only.

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

describe('outside user 3: deadlineQueue', () => {
  it('every entry expires when each expire settles its own entry (as a loader call does) and 1,024+ expire in one callback', async () => {
    const queue = deadlineQueue(97, { keepAlive: true })
    let expired = 0
    const add = () => {
      const entry: PendingDeadline = queue.add(() => {
        expired++
        queue.settle(entry) // the caller's own settle, as the read-through cache's loader call does
      })
    }
    for (let i = 0; i < 2_000; i++) add()
    await sleep(20)
    for (let i = 0; i < 10; i++) add()
    // The bound is only a watchdog: a lost deadline never expires.
    await waitFor('every entry to expire', () => expired === 2_010, { timeoutMs: 30_000 })
    expect({ expired, held: queue.held }).toEqual({ expired: 2_010, held: 0 })
  })
})
