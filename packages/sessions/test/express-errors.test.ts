import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { waitFor } from '@scale/testkit'
import express from 'express'
import { afterAll, describe, expect, it } from 'vitest'
import { expressSession, sessionErrorHandler } from '../src/express.js'
import type { Sessions } from '../src/index.js'
import type { Data } from './helpers/app-routes.js'
import { CookieClient } from './helpers/http-client.js'
import { resetCounts } from './helpers/redis-writes.js'
import { makeSessions } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()
const servers: Server[] = []
/** `/set` writes only once this resolves: the test stops Redis first, however slow the machine. */
let redisStopped: Promise<void> = Promise.resolve()

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
})

type ErrorHandling = 'express default' | 'own handler' | 'sessionErrorHandler'

async function serve(sessions: Sessions<Data>, handling: ErrorHandling): Promise<number> {
  const app = express()
  app.use(expressSession(sessions))
  app.post('/login', async (req, res) => {
    await sessions.of(req).regenerate({ userId: 'uma' })
    res.json({ ok: true })
  })
  app.get('/me', (req, res) => {
    res.json({ user: sessions.of(req).userId ?? null })
  })
  app.post('/set', async (req, res) => {
    await redisStopped
    sessions.of(req).set('k', 'v')
    res.json({ ok: true })
  })
  if (handling === 'own handler') {
    app.use(
      (
        error: { statusCode: number; code: string },
        _req: express.Request,
        res: express.Response,
        _next: express.NextFunction,
      ) => {
        res.status(error.statusCode).json({ mine: error.code })
      },
    )
  }
  if (handling === 'sessionErrorHandler') app.use(sessionErrorHandler())
  const server = createServer(app)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

describe('Express: one error path for load and save failures', () => {
  it.each<ErrorHandling>(['express default', 'own handler', 'sessionErrorHandler'])(
    '%s: a failed load and a failed save answer alike, without a stack trace',
    async (handling) => {
      const sessions = makeSessions(kit.redis, { commandTimeoutMs: 300, circuitBreaker: false })
      const port = await serve(sessions, handling)
      const client = new CookieClient(port, sessions.cookieName)
      await client.send('POST', '/login')

      // Save failure: the session loads, then Redis stops before the route's write.
      await resetCounts(kit.server)
      let stopped = () => {}
      redisStopped = new Promise((resolve) => {
        stopped = resolve
      })
      const saving = client.send('POST', '/set')
      await waitFor(
        'the request to load its session',
        async () => ((await kit.server.commandCounts()).hgetall ?? 0) >= 1,
      )
      kit.server.pause()
      stopped()
      let save: Awaited<typeof saving>
      let load: Awaited<typeof saving>
      try {
        save = await saving
        // Load failure: Redis still stopped.
        load = await client.send('GET', '/me')
      } finally {
        kit.server.resume()
      }
      for (const res of [save, load]) {
        expect(res.status).toBe(503)
        expect(res.body).not.toMatch(/\n\s+at /)
        expect(res.body).toContain(handling === 'own handler' ? '"mine"' : 'E_SESSION_STORE_UNAVAILABLE')
        expect(res.setCookies).toEqual([])
      }
      // One format: the same handler rendered both (the messages differ only in the operation).
      expect(save.body.slice(0, 40)).toBe(load.body.slice(0, 40))
      if (handling === 'sessionErrorHandler')
        expect(load.json().error.code).toBe('E_SESSION_STORE_UNAVAILABLE')
      await waitFor(
        'Redis to answer again',
        async () => (await client.send('GET', '/me')).json().user === 'uma',
      )
    },
  )
})
