import { type PostgresCluster, startPostgres } from '@scale/testkit'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { migrateToLatest } from '../app/migrations.js'
import { seedDatabase } from '../app/seed.js'

export interface DatabaseOptions {
  replicas: number
  seed: number
  users: number
}

/** A Postgres primary (+ streaming replicas) from the test kit, migrated and seeded. */
export async function startDatabase(options: DatabaseOptions): Promise<PostgresCluster> {
  const cluster = await startPostgres({
    replicas: options.replicas,
    settings: { max_connections: 300, shared_buffers: '128MB' },
  })
  try {
    const pool = new pg.Pool(cluster.primary.connection)
    pool.on('error', () => {}) // an idle client of a server being stopped must not crash the runner
    const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) })
    try {
      await migrateToLatest(db)
    } finally {
      await db.destroy()
    }
    await seedDatabase(cluster.primary.connection, { seed: options.seed, users: options.users })
    await cluster.waitForReplication(120_000)
    return cluster
  } catch (error) {
    await cluster.stop().catch(() => {})
    throw error
  }
}
