import { waitFor } from '@scale/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SessionStoreUnavailableError } from '../src/index.js'
import { CookieClient } from './helpers/http-client.js'
import { resetCounts } from './helpers/redis-writes.js'
import { type RunningServer, startServer } from './helpers/servers.js'
import { makeSessions } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()
const servers: RunningServer[] = []
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled)
})

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled)
  for (const server of servers) await server.close()
})

const THRESHOLD = 3

async function serve(probeIntervalMs: number) {
  const reported: Error[] = []
  const sessions = makeSessions(kit.redis, {
    commandTimeoutMs: 300,
    circuitBreaker: { failureThreshold: THRESHOLD, probeIntervalMs },
    onError: (error) => reported.push(error),
  })
  const server = await startServer('node', sessions)
  servers.push(server)
  const client = new CookieClient(server.port, sessions.cookieName)
  return { sessions, client, reported }
}

const circuitOpen = (body: { error?: { message?: string } }) => /circuit open/.test(body.error?.message ?? '')

describe('circuit breaker', () => {
  it('Redis killed: after the threshold every request fails fast without Redis; a probe closes it once Redis is back', async () => {
    const { client, reported } = await serve(100)
    await client.send('POST', '/login?user=kim')
    await kit.server.kill()
    const bodies = []
    for (let i = 0; i < THRESHOLD + 20; i++) {
      const res = await client.send('GET', '/me')
      expect(res.status).toBe(503)
      expect(res.json().error.code).toBe('E_SESSION_STORE_UNAVAILABLE')
      bodies.push(res.json())
    }
    // The first THRESHOLD requests found out the hard way; all later ones were refused at once.
    expect(bodies.slice(0, THRESHOLD).filter(circuitOpen)).toHaveLength(0)
    expect(bodies.slice(THRESHOLD).filter(circuitOpen)).toHaveLength(20)
    expect(
      reported.filter(
        (error) => error instanceof SessionStoreUnavailableError && error.context.circuit === 'open',
      ),
    ).toHaveLength(1)

    await kit.server.start()
    await waitFor(
      'the probe to close the circuit',
      async () => (await client.send('GET', '/me')).status === 200,
      {
        timeoutMs: 30_000,
        intervalMs: 50,
      },
    )
    await client.send('POST', '/login?user=kim')
    expect((await client.send('GET', '/me')).json().user).toBe('kim')
    expect(unhandled).toEqual([])
  })

  it('Redis hung (SIGSTOP): once open, requests send Redis nothing; recovery without a restart', async () => {
    const { client } = await serve(200)
    await client.send('POST', '/login?user=lee')
    await resetCounts(kit.server)
    kit.server.pause()
    try {
      for (let i = 0; i < THRESHOLD + 20; i++) expect((await client.send('GET', '/me')).status).toBe(503)
    } finally {
      kit.server.resume()
    }
    await waitFor(
      'the probe to close the circuit',
      async () => (await client.send('GET', '/me')).status === 200,
      {
        timeoutMs: 30_000,
        intervalMs: 50,
      },
    )
    expect((await client.send('GET', '/me')).json().user).toBe('lee')
    // Redis ran the reads of the THRESHOLD requests that timed out (queued while it was stopped)
    // and the two that succeeded after recovery: none of the 20 refused while open reached it.
    expect((await kit.server.commandCounts()).hgetall).toBe(THRESHOLD + 2)
    expect(unhandled).toEqual([])
  })
})
