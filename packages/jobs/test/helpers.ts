import type { RedisServer } from '@scale/testkit'
import { usePostgres } from '@scale/testkit/vitest'
import { Redis } from 'ioredis'
import { Redis as Redis6 } from 'ioredis6'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll } from 'vitest'

/**
 * `SCALE_JOBS_IOREDIS=6` runs the suite with ioredis 6 clients (the peer range covers 5 and 6):
 * every client made here is then a v6 one, and the package works on the user's instances.
 */
const useIoredis6 = process.env.SCALE_JOBS_IOREDIS === '6'

/** A client suitable for producers and workers alike (BullMQ workers need maxRetriesPerRequest: null). */
export function connect(port: number): Redis {
  const options = { host: '127.0.0.1', port, maxRetriesPerRequest: null }
  // The two majors' classes differ only in private fields; the package accepts either.
  const redis = useIoredis6 ? (new Redis6(options) as unknown as Redis) : new Redis(options)
  redis.on('error', () => {})
  return redis
}

/** {@link connect} for `useRedis({ connect: jobsClient })` from `@scale/testkit/vitest`. */
export const jobsClient = (server: RedisServer): Redis => connect(server.port)

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * The outbox files' setup (call at the top level): a test-kit Postgres for the file and a Kysely on
 * it, destroyed after the file. Idle connections see the server's shutdown then: expected, not a failure.
 */
export function useOutboxDb(): { readonly db: Kysely<Record<string, never>> } {
  const postgres = usePostgres()
  let db: Kysely<Record<string, never>> | undefined
  beforeAll(() => {
    const pool = new pg.Pool({ ...postgres.primary.connection, max: 4 })
    pool.on('error', () => {})
    db = new Kysely({ dialect: new PostgresDialect({ pool }) })
  })
  afterAll(async () => {
    await db?.destroy()
  })
  return {
    get db() {
      if (db === undefined) throw new Error('useOutboxDb().db is only there inside tests and hooks')
      return db
    },
  }
}
