import { createReplicatedKysely, type ReplicatedKysely } from '@scale/read-replica'
import { createReadThroughCache, type ReadThroughCache } from '@scale/read-through-cache'
import { createSessions, type Sessions } from '@scale/sessions'
import { fastifySession } from '@scale/sessions/fastify'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify'
import { Redis } from 'ioredis'
import pg from 'pg'
import { type Logger, pino } from 'pino'
import { createAssetUrls } from './assets.js'
import type { AppConfig } from './config.js'
import { handleError, sendError } from './errors.js'
import { createAppMetrics } from './metrics.js'
import { registerAssetRoutes } from './routes/assets.js'
import { registerAuthRoutes } from './routes/auth.js'
import { registerBrowserPages } from './routes/browser-pages.js'
import { registerPageRoutes } from './routes/pages.js'
import { registerUploadRoutes } from './routes/uploads.js'
import { registerUserRoutes } from './routes/users.js'
import type { Database } from './schema.js'
import { UserStore } from './user-store.js'

/** Request bodies larger than this are refused with 413 before they are parsed. */
export const BODY_LIMIT_BYTES = 16 * 1024

export interface SessionData {
  [key: string]: unknown
}

/** Everything a route needs; built once per process from the config. */
export interface AppContext {
  config: AppConfig
  db: ReplicatedKysely<Database>
  users: UserStore
  cache: ReadThroughCache | undefined
  sessions: Sessions<SessionData> | undefined
  assetUrl: (path: string) => string
  log: Logger
  counters: { photoLoads: number }
}

export interface DemoApp {
  fastify: FastifyInstance
  context: AppContext
  close(): Promise<void>
}

function pool(connection: AppConfig['primary'], size: number, log: Logger): pg.Pool {
  const options = typeof connection === 'string' ? { connectionString: connection } : connection
  const created = new pg.Pool({ ...options, max: size, connectionTimeoutMillis: 5_000 })
  // A database killed under the pool must not crash the web server (the drills kill them).
  created.on('error', (error) => log.warn({ err: error }, 'idle database connection lost'))
  return created
}

/** Builds the photo-sharing app with the blocks `config` switches on. */
export async function buildApp(config: AppConfig): Promise<DemoApp> {
  const log = pino({ level: config.logLevel, base: { server: config.name, pid: process.pid } })

  // Stage 4: reads to the replicas, writes to the primary, read-your-writes by WAL position.
  // With no replicas everything goes to the primary (stages 1-3).
  const db = createReplicatedKysely<Database>({
    primary: pool(config.primary, config.poolSize, log),
    replicas: config.replicas.map((url) => pool(url, config.poolSize, log)),
    logger: log,
  })

  // Reconnect at most 500 ms apart (ioredis' default backs off to 2 s): after a Redis restart
  // (stage 5) or a session store promoted in another region (stage 8), requests wait on the
  // reconnect, not on the back-off.
  const redisOptions = {
    maxRetriesPerRequest: 1,
    retryStrategy: (times: number) => Math.min(times * 50, 500),
  }
  const redis = config.redis ? new Redis(config.redis, redisOptions) : undefined
  redis?.on('error', () => {}) // Redis outages are handled by the blocks themselves (stage 5 drill)

  // Stage 5: one database load per user across all web servers; `local: false` because with several
  // servers a local copy could outlive another server's invalidation and serve a stale profile.
  const cache =
    config.cache && redis
      ? createReadThroughCache({ redis, prefix: 'demo:', local: false, logger: log })
      : undefined

  // Stage 8: a region's web servers keep sessions in the shared store, not in their region's Redis.
  const sessionsRedis = config.sessionsRedis ? new Redis(config.sessionsRedis, redisOptions) : redis
  if (sessionsRedis !== redis) sessionsRedis?.on('error', () => {})

  // Stage 7: sessions in Redis, so any web server can serve any logged-in user.
  const sessions =
    config.sessions && sessionsRedis
      ? createSessions<SessionData>({
          redis: sessionsRedis,
          secrets: [config.sessionSecret],
          // The demo runs plain HTTP on loopback; behind TLS keep the default (Secure, __Host-).
          cookie: { secure: false },
          // Loopback Redis answers in well under a millisecond: give up on a command after 500 ms
          // (not 2 s) and probe every 250 ms while the breaker is open, so a session store promoted
          // in another region (stage 8) serves again within a probe of its promotion.
          commandTimeoutMs: 500,
          circuitBreaker: { failureThreshold: 5, probeIntervalMs: 250 },
        })
      : undefined

  const users = new UserStore(db, cache, log)
  const counters = { photoLoads: 0 }
  const context: AppContext = {
    config,
    db,
    users,
    cache,
    sessions,
    assetUrl: createAssetUrls(config.cdnBaseUrl),
    log,
    counters,
  }

  const metrics = createAppMetrics(config.name, {
    dbQueries: () =>
      Object.fromEntries(Object.entries(db.router.metrics().byNode).map(([node, c]) => [node, c.queries])),
    cache: () => cache?.stats() as Record<string, unknown> | undefined,
  })

  const fastify = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // One log line per request would cost more than the request itself.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    // Stage 10: the load balancer's request ID becomes this request's ID in every log line.
    requestIdHeader: 'x-request-id',
    return503OnClosing: true,
  })
  // JSON only: a body of another type is refused with 415 rather than parsed as a string.
  fastify.removeContentTypeParser(['text/plain'])
  fastify.setErrorHandler(handleError)
  fastify.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, 'E_NOT_FOUND', `no route for ${request.method} ${request.url}`),
  )
  // API answers are per user and change on write: no shared cache (the stage 6 edge) may keep
  // them. Assets set their own long-lived Cache-Control.
  fastify.addHook('onSend', async (_request, reply, payload) => {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'private, no-store')
    return payload
  })
  fastify.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched'
    metrics.requests.inc({ method: request.method, route, status: reply.statusCode })
    metrics.duration.observe({ route }, reply.elapsedTime / 1000)
  })
  if (sessions) await fastify.register(fastifySession(sessions))

  fastify.get('/healthz', async () => ({ ok: true, server: config.name }))
  fastify.get('/metrics', async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  )
  // What the runner reads after each load phase (the same counters /metrics shows, as JSON).
  fastify.get('/_demo/stats', async () => ({
    server: config.name,
    pid: process.pid,
    db: db.router.metrics(),
    cache: cache?.stats() ?? null,
    userLoads: users.loads,
    photoLoads: counters.photoLoads,
  }))
  registerUserRoutes(fastify, context)
  registerAuthRoutes(fastify, context)
  registerPageRoutes(fastify, context)
  registerAssetRoutes(fastify, context)
  registerUploadRoutes(fastify, context)
  registerBrowserPages(fastify, context)

  let closed: Promise<void> | undefined
  const close = () => {
    closed ??= (async () => {
      await fastify.close()
      await cache?.close().catch(() => {})
      await db.destroy().catch(() => {})
      redis?.disconnect()
      if (sessionsRedis !== redis) sessionsRedis?.disconnect()
    })()
    return closed
  }
  return { fastify, context, close }
}
