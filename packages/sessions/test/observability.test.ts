import { waitFor } from '@scale/testkit'
import * as promClient from 'prom-client'
import { describe, expect, it } from 'vitest'
import {
  createSessions,
  type Logger,
  type MetricsHook,
  promClientMetrics,
  SessionStoreUnavailableError,
  SessionsClosedError,
  SessionsOptionsError,
} from '../src/index.js'
import { makeSessions, SECRET } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()

/** A metrics hook that records every call, as `name{labels}` → summed value. */
function recordingMetrics(): MetricsHook & { counts: Map<string, number>; observed: string[] } {
  const counts = new Map<string, number>()
  const observed: string[] = []
  const key = (name: string, labels?: Record<string, string>) =>
    labels ? `${name}${JSON.stringify(labels)}` : name
  return {
    counts,
    observed,
    increment(name, labels, value = 1) {
      counts.set(key(name, labels), (counts.get(key(name, labels)) ?? 0) + value)
    },
    observe(name, value, labels) {
      observed.push(`${key(name, labels)}=${value}`)
    },
  }
}

/** A logger that keeps what it was given, by level. */
function recordingLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = []
  return {
    lines,
    info: (_object, message) => lines.push({ level: 'info', message }),
    warn: (_object, message) => lines.push({ level: 'warn', message }),
    error: (_object, message) => lines.push({ level: 'error', message }),
  }
}

/** The `name=value` of a Set-Cookie header, for the next request's Cookie header. */
function cookieOf(setCookie: string | undefined): string {
  return (setCookie as string).split(';')[0] as string
}

describe('metrics hook', () => {
  it('counts loads, saves, rotations and revocations', async () => {
    const metrics = recordingMetrics()
    const sessions = makeSessions(kit.redis, { metrics })
    const anonymous = await sessions.load({})
    anonymous.set('cart', ['apple'])
    let cookie = cookieOf((await sessions.commit(anonymous)).setCookie)

    const login = await sessions.load({ cookie })
    await login.regenerate({ userId: 'ann', keepData: true })
    cookie = cookieOf((await sessions.commit(login)).setCookie)

    const rotate = await sessions.load({ cookie })
    await rotate.regenerate({ keepData: true })
    cookie = cookieOf((await sessions.commit(rotate)).setCookie)

    const update = await sessions.load({ cookie })
    update.set('cart', ['apple', 'pear'])
    await sessions.commit(update)

    expect(await sessions.destroyAllUserSessions('ann')).toBe(1)

    expect(Object.fromEntries(metrics.counts)).toEqual({
      'sessions_loads_total{"result":"new"}': 1,
      'sessions_loads_total{"result":"found"}': 3,
      // anonymous create, login create, rotation create, update
      'sessions_saves_total{"kind":"create"}': 3,
      'sessions_saves_total{"kind":"update"}': 1,
      sessions_rotations_total: 1,
      'sessions_revocations_total{"scope":"all"}': 1,
    })
  })

  it('a hook that throws never breaks a request, and is logged once', async () => {
    const logger = recordingLogger()
    const sessions = makeSessions(kit.redis, {
      logger,
      metrics: {
        increment() {
          throw new Error('broken exporter')
        },
        observe() {
          throw new Error('broken exporter')
        },
      },
    })
    for (let i = 0; i < 3; i++) {
      const session = await sessions.load({})
      session.set('n', i)
      expect((await sessions.commit(session)).setCookie).toMatch(/^__Host-sid=/)
    }
    expect(logger.lines.filter((line) => line.message.includes('metrics hook threw'))).toHaveLength(1)
  })
})

describe('promClientMetrics', () => {
  it('feeds prom-client counters in a real registry, every metric listed from the start', async () => {
    const registry = new promClient.Registry()
    const sessions = makeSessions(kit.redis, {
      metrics: promClientMetrics({ promClient, registers: [registry] }),
    })
    expect(await registry.metrics()).toContain('scale_sessions_circuit_open 0')
    const session = await sessions.load({})
    session.set('n', 1)
    await sessions.commit(session)
    const text = await registry.metrics()
    expect(text).toContain('scale_sessions_loads_total{result="new"} 1')
    expect(text).toContain('scale_sessions_saves_total{kind="create"} 1')
    expect(text).toContain('# TYPE scale_sessions_revocations_total counter')
  })
})

describe('logger', () => {
  it('gets the breaker opening (warn, with onError) and closing (info) while Redis is down and back', async () => {
    const logger = recordingLogger()
    const metrics = recordingMetrics()
    const reported: Error[] = []
    const sessions = makeSessions(kit.redis, {
      logger,
      metrics,
      onError: (error) => reported.push(error),
      commandTimeoutMs: 300,
      circuitBreaker: { failureThreshold: 2, probeIntervalMs: 50 },
    })
    const first = await sessions.load({})
    first.set('n', 1)
    const cookie = cookieOf((await sessions.commit(first)).setCookie)

    await kit.server.kill()
    for (let i = 0; i < 2; i++) {
      await expect(sessions.load({ cookie })).rejects.toBeInstanceOf(SessionStoreUnavailableError)
    }
    expect(reported.map((error) => error.constructor.name)).toEqual(['SessionStoreUnavailableError'])
    expect(logger.lines.filter((line) => line.level === 'warn')).toHaveLength(1)

    await kit.server.start()
    await waitFor('the breaker to close', async () => {
      try {
        await sessions.load({ cookie })
        return true
      } catch {
        return false
      }
    })
    expect(logger.lines.filter((line) => line.level === 'info').map((line) => line.message)).toEqual([
      '[@scale/sessions] Redis answers again: circuit closed',
    ])
    expect(metrics.counts.get('sessions_circuit_transitions_total{"state":"open"}')).toBe(1)
    expect(metrics.counts.get('sessions_circuit_transitions_total{"state":"closed"}')).toBe(1)
    expect(metrics.observed).toEqual(['sessions_circuit_open=1', 'sessions_circuit_open=0'])
    expect(metrics.counts.get('sessions_errors_total{"code":"E_SESSION_STORE_UNAVAILABLE"}')).toBeGreaterThan(
      0,
    )
  })
})

describe('close()', () => {
  it('is idempotent, makes every method throw SessionsClosedError, and leaves the Redis client open', async () => {
    const sessions = makeSessions(kit.redis)
    const first = await sessions.load({})
    first.set('n', 1)
    const cookie = cookieOf((await sessions.commit(first)).setCookie)
    const stored = await sessions.load({ cookie })
    const open = await sessions.load({})
    open.set('n', 1)
    await Promise.all([sessions.close(), sessions.close()])
    await sessions.close()

    const calls: [string, () => Promise<unknown>][] = [
      ['load', () => sessions.load({})],
      ['commit', () => sessions.commit(open)],
      ['save', () => sessions.save(open)],
      ['listUserSessions', () => sessions.listUserSessions('ann')],
      ['destroyUserSession', () => sessions.destroyUserSession('ann', 'x')],
      ['destroyAllUserSessions', () => sessions.destroyAllUserSessions('ann')],
    ]
    for (const [method, call] of calls) {
      const error = await call().then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(error, method).toBeInstanceOf(SessionsClosedError)
      expect((error as SessionsClosedError).code).toBe('E_SESSIONS_CLOSED')
      expect((error as SessionsClosedError).context.method).toBe(method)
    }
    // A stored session's own destroy() goes through the closed instance too.
    await expect(stored.destroy()).rejects.toBeInstanceOf(SessionsClosedError)
    expect(await kit.redis.ping()).toBe('PONG')
  })
})

describe('deprecated option names', () => {
  it('redisTimeoutMs is still read when commandTimeoutMs is not given', () => {
    let caught: unknown
    try {
      createSessions({ redis: kit.redis, secrets: [SECRET], redisTimeoutMs: 0 })
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(SessionsOptionsError)
    expect((caught as SessionsOptionsError).context.option).toBe('redisTimeoutMs')
    expect(() => createSessions({ redis: kit.redis, secrets: [SECRET], commandTimeoutMs: 0 })).toThrow(
      SessionsOptionsError,
    )
  })
})
