/**
 * Stage 11's web server: the app's posts and profiles over shards through `@scale/sharding`. Forked
 * by the runner like the other web servers (config in DEMO_APP_CONFIG, port over IPC, exits when
 * the runner goes away). Each shard is a primary with a streaming replica behind
 * `@scale/read-replica`, so profile reads go to the shard's replica and writes to its primary.
 */
import { createReplicatedKysely } from '@scale/read-replica'
import { createShardedKysely, postgresMapStore, ShardingError, ShardMapStaleError } from '@scale/sharding'
import Fastify from 'fastify'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { pino } from 'pino'
import type { ShardDatabase, ShardedAppConfig } from './shard-schema.js'

const config = JSON.parse(process.env.DEMO_APP_CONFIG ?? '{}') as ShardedAppConfig & { port: number }
const log = pino({ base: { server: config.name, pid: process.pid } })

function pool(url: string): pg.Pool {
  const created = new pg.Pool({ connectionString: url, max: 8, connectionTimeoutMillis: 5_000 })
  created.on('error', (error) => log.warn({ err: error }, 'idle database connection lost'))
  return created
}

const control = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: pool(config.control) }) })
const shards = Object.fromEntries(
  Object.entries(config.shards).map(([name, urls]) => [
    name,
    createReplicatedKysely<ShardDatabase>({
      primary: { pool: pool(urls.primary), name: `${name}-primary` },
      replicas: urls.replica ? [{ pool: pool(urls.replica), name: `${name}-replica` }] : [],
      logger: log,
    }),
  ]),
)
const mapStore = postgresMapStore({
  db: control,
  listen: async () => {
    const client = new pg.Client({ connectionString: config.control })
    await client.connect()
    return client
  },
})

/**
 * Start-up is bounded by the map store's mapLoadTimeoutMs (1 s): a control database that is slow
 * to answer on a busy machine fails it with ShardMapStaleError, so try again a few times, as a
 * deployment would (a failed start leaves nothing running).
 */
async function startRouter() {
  for (let attempt = 1; ; attempt++) {
    try {
      return await createShardedKysely<ShardDatabase>({
        shards,
        map: mapStore,
        // The mover waits cleanupDelayMs (above this) before deleting a moved bucket's old copy.
        maxMapAgeMs: config.maxMapAgeMs,
        refreshIntervalMs: 500,
        logger: log,
      })
    } catch (error) {
      if (!(error instanceof ShardMapStaleError) || attempt === 10) throw error
      log.warn({ err: error, attempt }, 'shard map store not answering at start-up; retrying')
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  }
}
const db = await startRouter()

const fastify = Fastify({ loggerInstance: log, disableRequestLogging: true })
const userId = (value: unknown) => {
  const id = Number(value)
  return Number.isSafeInteger(id) && id > 0 ? id : undefined
}

/** A post by a user: the post row and the user's post count, in one transaction on the user's shard. */
fastify.post('/posts', async (request, reply) => {
  const body = (request.body ?? {}) as { userId?: unknown; postId?: unknown }
  const id = userId(body.userId)
  const postId = userId(body.postId)
  if (id === undefined || postId === undefined)
    return reply.code(400).send({ error: 'userId and postId must be positive integers' })
  await db.transactionForKey(id, async (trx) => {
    await trx
      .insertInto('post')
      .values({ id: postId, user_id: id, body: `post ${postId}` })
      .execute()
    await trx.updateTable('account').set({ posts: sql`posts + 1` }).where('id', '=', id).execute()
  })
  return reply.code(201).send({ postId, userId: id, shard: db.shardOf(id) })
})

fastify.get('/users/:id', async (request, reply) => {
  const id = userId((request.params as { id: string }).id)
  if (id === undefined) return reply.code(400).send({ error: 'not a user ID' })
  const user = await db.forKey(id).selectFrom('account').selectAll().where('id', '=', id).executeTakeFirst()
  if (!user) return reply.code(404).send({ error: 'no such user' })
  return { ...user, shard: db.shardOf(id) }
})

fastify.get('/healthz', async () => ({ ok: true }))

fastify.get('/_demo/shard-map', async () => ({ epoch: db.map.epoch, shards: db.shardNames }))

fastify.setErrorHandler((error: unknown, _request, reply) => {
  log.error({ err: error }, 'request failed')
  const code = error instanceof ShardingError ? error.code : 'E_INTERNAL'
  return reply
    .code(503)
    .send({ error: code, message: error instanceof Error ? error.message : String(error) })
})

const address = await fastify.listen({ host: '127.0.0.1', port: config.port })
process.send?.({ type: 'listening', port: Number(new URL(address).port) })

let stopping = false
async function shutdown(): Promise<void> {
  if (stopping) return
  stopping = true
  setTimeout(() => process.exit(0), 3_000).unref()
  await fastify.close().catch(() => {})
  await db.close().catch(() => {})
  await control.destroy().catch(() => {})
  process.exit(0)
}
process.on('disconnect', () => void shutdown())
process.on('SIGTERM', () => void shutdown())
process.on('SIGINT', () => void shutdown())
