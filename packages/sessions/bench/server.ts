// One bench server process. Usage: server.ts <scale|express-session> <express|node> <redis port> <key prefix>
// Both session variants run the same server code and the same route; only the session middleware
// differs. `node` runs the middleware on a bare node:http server (express-session is Connect
// middleware and runs there too), which leaves the session layer a larger share of the work.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { RedisStore } from 'connect-redis'
import express, { type RequestHandler } from 'express'
import expressSessionMiddleware from 'express-session'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { expressSession } from '../src/express.js'
import { createSessions } from '../src/index.js'

const [variant, framework, redisPort, keyPrefix] = process.argv.slice(2) as [string, string, string, string]
const secret = 'bench-secret-bench-secret-bench-secret-0123'

interface Counter {
  get(): number
  set(value: number): void
  /** Fills the session like a real app's (profile, preferences, cart): 20 fields of 200 bytes. */
  seed(): void
}

const SEED = Array.from({ length: 20 }, (_, i) => [`field${i}`, `${i}`.padEnd(200, 'x')] as const)

let middleware: RequestHandler
let counterOf: (req: IncomingMessage) => Counter
let close: () => Promise<void>

if (variant === 'scale') {
  // Auto-pipelining batches the commands of concurrent requests into one socket write, as node-redis
  // does by default; it is the setting we recommend for a busy web server.
  const redis = new Redis({ host: '127.0.0.1', port: Number(redisPort), enableAutoPipelining: true })
  const sessions = createSessions<Record<string, unknown> & { views?: number }>({
    redis,
    secrets: [secret],
    keyPrefix,
  })
  middleware = expressSession(sessions) as unknown as RequestHandler
  counterOf = (req) => {
    const session = sessions.of(req)
    return {
      get: () => session.get('views') ?? 0,
      set: (value) => session.set('views', value),
      seed: () => {
        for (const [key, value] of SEED) session.set(key, value)
      },
    }
  }
  close = async () => {
    redis.disconnect()
  }
} else {
  const client = createClient({ socket: { host: '127.0.0.1', port: Number(redisPort) } })
  await client.connect()
  middleware = expressSessionMiddleware({
    store: new RedisStore({ client, prefix: keyPrefix }),
    secret,
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: 'lax' },
  })
  counterOf = (req) => {
    const data = (req as express.Request).session as unknown as Record<string, unknown> & { views?: number }
    return {
      get: () => data.views ?? 0,
      set: (value) => {
        data.views = value
      },
      seed: () => {
        for (const [key, value] of SEED) data[key] = value
      },
    }
  }
  close = async () => {
    await client.quit()
  }
}

// The measured route: read the session, write one field, answer.
// /bench reads and writes (the measured route); /read only reads (what most requests do);
// /seed fills a new session with 4 KB of fields, to measure sessions of realistic size.
function route(req: IncomingMessage, res: ServerResponse): void {
  const counter = counterOf(req)
  let views = counter.get()
  if (req.url?.startsWith('/seed')) counter.seed()
  if (!req.url?.startsWith('/read')) {
    views += 1
    counter.set(views)
  }
  const body = JSON.stringify({ views })
  res.statusCode = 200
  res.setHeader('content-type', 'application/json; charset=utf-8')
  res.setHeader('content-length', Buffer.byteLength(body))
  res.end(body)
}

let handler: (req: IncomingMessage, res: ServerResponse) => void
if (framework === 'express') {
  const app = express()
  app.disable('x-powered-by')
  app.disable('etag')
  app.use(middleware)
  app.get(['/bench', '/read', '/seed'], (req, res) => route(req, res))
  handler = app
} else {
  const run = middleware as unknown as (
    req: IncomingMessage,
    res: ServerResponse,
    next: (error?: unknown) => void,
  ) => void
  handler = (req, res) => {
    run(req, res, (error) => {
      if (error) {
        res.statusCode = 503
        res.end()
      } else route(req, res)
    })
  }
}

const server = createServer(handler)
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`)
})
process.on('SIGTERM', () => {
  server.closeAllConnections()
  server.close(() => void close().then(() => process.exit(0)))
})
