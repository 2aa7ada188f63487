// One bench server process. Usage: server.ts <scale|express-session|none> <express|node> <redis port> <key prefix>
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
  /** Logs a user in (a new session ID bound to the user), for the logged-in scenario. */
  login(userId: string): Promise<void>
}

const SEED = Array.from({ length: 20 }, (_, i) => [`field${i}`, `${i}`.padEnd(200, 'x')] as const)

let middleware: RequestHandler
let counterOf: (req: IncomingMessage) => Counter
let close: () => Promise<void>

if (variant === 'none') {
  // The floor: the same server and route with an in-memory counter and no session layer, so the
  // table shows how much of a request's cost the session layer is.
  const counters = new WeakMap<IncomingMessage, Record<string, unknown>>()
  const data = (req: IncomingMessage) => counters.get(req) ?? {}
  middleware = ((req: IncomingMessage, _res: ServerResponse, next: () => void) => {
    counters.set(req, {})
    next()
  }) as unknown as RequestHandler
  counterOf = (req) => ({
    get: () => (data(req).views as number | undefined) ?? 0,
    set: (value) => {
      data(req).views = value
    },
    seed: () => {},
    login: async () => {},
  })
  close = async () => {}
} else if (variant === 'scale') {
  // ioredis defaults, as its users run it. `enableAutoPipelining: true` was measured to cost ~20 %
  // more server CPU per request here: with 32 connections each batch holds one or two commands,
  // and the Pipeline object built per batch costs more than the socket writes it saves.
  const redis = new Redis({ host: '127.0.0.1', port: Number(redisPort) })
  redis.on('error', () => {}) // the Redis-down phase kills Redis: reconnect errors are expected
  const sessions = createSessions<Record<string, unknown> & { views?: number }>({
    redis,
    secrets: [secret],
    keyPrefix,
    // BENCH_COALESCE=off: A/B of coalesceWrites. BENCH_BREAKER=off: the Redis-down phase's
    // control, where every request waits out the timeout.
    ...(process.env.BENCH_COALESCE === 'off' ? { coalesceWrites: false } : {}),
    ...(process.env.BENCH_BREAKER === 'off' ? { circuitBreaker: false as const } : {}),
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
      login: (userId) => session.regenerate({ userId }),
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
      login: (userId) =>
        new Promise<void>((resolve, reject) => {
          const session = (req as express.Request).session
          session.regenerate((error) => {
            if (error) reject(error)
            else {
              ;((req as express.Request).session as unknown as Record<string, unknown>).userId = userId
              resolve()
            }
          })
        }),
    }
  }
  close = async () => {
    await client.quit()
  }
}

// The measured route: read the session, write one field, answer.
// /bench reads and writes (the measured route); /read only reads (what most requests do);
// /seed fills a new session with 4 KB of fields, to measure sessions of realistic size;
// /login logs a user in, to measure a logged-in session's read+write.
let logins = 0

function route(req: IncomingMessage, res: ServerResponse): void {
  // /login logs a new user in first (the logged-in scenario's sessions are made this way).
  if (req.url?.startsWith('/login')) {
    counterOf(req)
      .login(`user-${++logins}`)
      .then(
        () => answer(req, res),
        () => {
          res.statusCode = 500
          res.end()
        },
      )
    return
  }
  answer(req, res)
}

function answer(req: IncomingMessage, res: ServerResponse): void {
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
  app.get(['/bench', '/read', '/seed', '/login'], (req, res) => route(req, res))
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
