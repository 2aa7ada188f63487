import { uniqueName, useRedis } from '@scale/testkit/vitest'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { deadlineQueue, isNoScript, RedisScript, withCommandDeadline } from '../src/index.js'

const env = useRedis()
let redis: Redis
const clients: Redis[] = []

beforeAll(async () => {
  redis = client()
  await redis.ping()
})

afterAll(async () => {
  for (const c of clients) c.disconnect()
})

function client(): Redis {
  const c = new Redis({ host: '127.0.0.1', port: env.server.port, maxRetriesPerRequest: 1 })
  c.on('error', () => {})
  clients.push(c)
  return c
}

const key = () => uniqueName('t')

describe('RedisScript', () => {
  // A fresh body per test: the server's script cache is shared by the tests of this file.
  const incrBy = () => new RedisScript(`return redis.call('INCRBY', KEYS[1], ARGV[1]) -- ${key()}`)

  beforeEach(async () => {
    await env.server.command('config', 'resetstat')
  })

  it('sends the body once (EVALSHA, NOSCRIPT, EVAL), then only EVALSHA', async () => {
    const script = incrBy()
    const k = key()
    expect(await script.run(redis, [k], [2])).toBe(2)
    expect(await script.run(redis, [k], [3])).toBe(5)
    expect(await script.run(redis, [k], [4])).toBe(9)
    const counts = await env.server.commandCounts()
    expect(counts.evalsha).toBe(3)
    expect(counts.eval).toBe(1)
  })

  it('after SCRIPT FLUSH falls back to EVAL once more, and the result is the same', async () => {
    const script = incrBy()
    const k = key()
    await script.run(redis, [k], [1])
    await redis.script('FLUSH')
    expect(await script.run(redis, [k], [1])).toBe(2)
    expect(await script.run(redis, [k], [1])).toBe(3)
    const counts = await env.server.commandCounts()
    expect(counts.eval).toBe(2)
  })

  it("a script's own error is thrown as is, with no EVAL retry", async () => {
    const script = new RedisScript(`return redis.call('INCR', KEYS[1]) -- ${key()}`)
    const k = key()
    await redis.set(k, 'not a number')
    await script.run(redis, [k], []).catch(() => {}) // caches the body
    await env.server.command('config', 'resetstat')
    const error = await script.run(redis, [k], []).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
    expect(isNoScript(error)).toBe(false)
    expect((error as Error).message).toMatch(/not an integer/)
    const counts = await env.server.commandCounts()
    expect(counts.evalsha).toBe(1)
    expect(counts.eval).toBeUndefined()
  })

  it('the digest is the SHA-1 that SCRIPT LOAD returns', async () => {
    const script = incrBy()
    expect(await redis.script('LOAD', script.source)).toBe(script.sha)
  })
})

describe('withCommandDeadline', () => {
  const handlers = () => {
    const seen = { succeeded: 0, failed: [] as { error: unknown; timedOut: boolean }[] }
    return {
      seen,
      handlers: {
        timeoutError: (ms: number) => new Error(`no reply within ${ms} ms`),
        failed(error: unknown, timedOut: boolean) {
          seen.failed.push({ error, timedOut })
          return new Error('wrapped', { cause: error })
        },
        succeeded() {
          seen.succeeded++
        },
      },
    }
  }

  it('passes a reply through and reports one success', async () => {
    const { seen, handlers: h } = handlers()
    const k = key()
    await redis.set(k, 'v')
    expect(await withCommandDeadline(() => redis.get(k), 5_000, h)).toBe('v')
    expect(seen).toEqual({ succeeded: 1, failed: [] })
  })

  it("maps the command's rejection through failed (timedOut false)", async () => {
    const { seen, handlers: h } = handlers()
    const k = key()
    await redis.set(k, 'text')
    const error = await withCommandDeadline(() => redis.incr(k), 5_000, h).catch((e: unknown) => e)
    expect((error as Error).message).toBe('wrapped')
    expect(seen.failed).toHaveLength(1)
    expect(seen.failed[0]?.timedOut).toBe(false)
    expect(((error as Error).cause as Error).message).toMatch(/not an integer/)
  })

  it('a command that throws synchronously is a rejection, not a throw', async () => {
    const { seen, handlers: h } = handlers()
    const call = withCommandDeadline<string>(
      () => {
        throw new Error('sync')
      },
      5_000,
      h,
    )
    await expect(call).rejects.toThrow('wrapped')
    expect(seen.failed[0]?.timedOut).toBe(false)
  })

  it('on a hung Redis rejects with the timeout error and drops the late reply', async () => {
    const hung = client()
    await hung.ping()
    const { seen, handlers: h } = handlers()
    const k = key()
    env.server.pause()
    let error: unknown
    try {
      error = await withCommandDeadline(() => hung.set(k, 'late'), 300, h).catch((e: unknown) => e)
    } finally {
      env.server.resume()
    }
    expect(((error as Error).cause as Error).message).toBe('no reply within 300 ms')
    expect(seen.failed).toEqual([{ error: (error as Error).cause, timedOut: true }])
    // The command still reaches Redis once it answers again; its late reply is reported to nobody.
    expect(await hung.get(k)).toBe('late')
    expect(seen.succeeded).toBe(0)
    expect(seen.failed).toHaveLength(1)
  })

  it('without failed, rejects with the timeout error itself', async () => {
    const never = new Promise<string>(() => {})
    const error = await withCommandDeadline(() => never, 20, {
      timeoutError: (ms) => new Error(`after ${ms}`),
    }).catch((e: unknown) => e)
    expect((error as Error).message).toBe('after 20')
  })
  it('a deadline that never settles does not pin the settled ones behind it: the queue stays about as long as what is pending', () => {
    const queue = deadlineQueue(987_654)
    const hung = queue.add(() => {})
    for (let i = 0; i < 10_000; i++) queue.settle(queue.add(() => {}))
    // Without dropping settled entries behind a pending head, all 10,001 would be held.
    expect(queue.held).toBeLessThanOrEqual(2_100)
    queue.settle(hung)
    expect(queue.held).toBe(0)
  })

  it('commands sharing a timeout each get their own deadline, whatever order they settle in', async () => {
    const timeoutError = (ms: number) => new Error(`after ${ms}`)
    const outcome = (p: Promise<string>) =>
      p.then(
        (value) => value,
        (error: unknown) => (error as Error).message,
      )
    const hangs = new Promise<string>(() => {})
    let answerLate: (value: string) => void = () => {}
    const late = new Promise<string>((resolve) => {
      answerLate = resolve
    })
    // A hung command ahead of one that answers, and one that answers before its deadline behind it.
    const first = outcome(withCommandDeadline(() => hangs, 40, { timeoutError }))
    const second = outcome(withCommandDeadline(() => Promise.resolve('ok'), 40, { timeoutError }))
    const third = outcome(withCommandDeadline(() => late, 40, { timeoutError }))
    answerLate('answered')
    expect(await Promise.all([first, second, third])).toEqual(['after 40', 'ok', 'answered'])
    // The queue emptied and its timer stopped: a later command still gets a deadline.
    expect(await outcome(withCommandDeadline(() => hangs, 30, { timeoutError }))).toBe('after 30')
    expect(await outcome(withCommandDeadline(() => hangs, 30, { timeoutError }))).toBe('after 30')
  })
  it("a timeout past Node timers' 2^31-1 ms limit does not fire early (nor warn)", async () => {
    const warnings: string[] = []
    const onWarning = (warning: Error) => warnings.push(warning.name)
    process.on('warning', onWarning)
    try {
      let answer: (value: string) => void = () => {}
      const slow = new Promise<string>((resolve) => {
        answer = resolve
      })
      const call = withCommandDeadline(() => slow, 2 ** 31 + 1_000, {
        timeoutError: (ms) => new Error(`after ${ms}`),
      })
      // Node would fire an overflowing timer after 1 ms: give it far longer than that.
      await new Promise((resolve) => setTimeout(resolve, 50))
      answer('answered')
      expect(await call).toBe('answered')
      expect(warnings).not.toContain('TimeoutOverflowWarning')
    } finally {
      process.off('warning', onWarning)
    }
  })
})
