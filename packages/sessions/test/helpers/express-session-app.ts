import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { RedisStore } from 'connect-redis'
import express from 'express'
import session from 'express-session'
import { createClient } from 'redis'
import type { RunningServer } from './servers.js'
import { SECRET } from './setup.js'

/**
 * The anchor: express-session 1.19 + connect-redis 9 over node-redis, the stack most Express apps
 * use, configured as its docs recommend (resave: false, saveUninitialized: false). The routes are
 * the same as the @scale/sessions ones used against it.
 */
export async function startExpressSessionServer(redisPort: number, prefix: string): Promise<RunningServer> {
  const client = createClient({ socket: { host: '127.0.0.1', port: redisPort } })
  client.on('error', () => {})
  await client.connect()
  const app = express()
  app.use(
    session({
      store: new RedisStore({ client, prefix }),
      secret: SECRET,
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax' },
    }),
  )
  app.post('/set', async (req, res) => {
    const delay = Number(req.query.delay ?? 0)
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
    ;(req.session as unknown as Record<string, unknown>)[String(req.query.k)] = req.query.v
    res.json({ ok: true })
  })
  app.get('/me', (req, res) => {
    res.json({ data: req.session })
  })
  app.get('/bench', (req, res) => {
    const data = req.session as unknown as { views?: number }
    data.views = (data.views ?? 0) + 1
    res.json({ views: data.views })
  })
  const server: Server = createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await client.quit()
    },
  }
}
