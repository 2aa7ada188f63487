import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely'
import { jobMigrations } from './migrations-jobs.js'

/** The app's schema history, in code so the migrations ship with the app. */
const migrations: Record<string, Migration> = {
  '001-users': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('username', 'text', (c) => c.notNull().unique())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('first_name', 'text', (c) => c.notNull())
        .addColumn('last_name', 'text', (c) => c.notNull())
        .addColumn('street_address', 'text', (c) => c.notNull())
        .addColumn('city', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('postal_code', 'text', (c) => c.notNull())
        .addColumn('phone_numbers', 'jsonb', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute()
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('users').execute()
    },
  },
  '002-photos': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('photos')
        .addColumn('id', 'serial', (c) => c.primaryKey())
        .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
        .addColumn('caption', 'text', (c) => c.notNull())
        .addColumn('hue', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute()
      await db.schema.createIndex('photos_user_id').on('photos').column('user_id').execute()
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('photos').execute()
    },
  },
  ...jobMigrations,
}

const provider: MigrationProvider = { getMigrations: async () => migrations }

/** Brings the database to the latest schema; throws the first failing migration's error. */
export async function migrateToLatest(db: Kysely<unknown>): Promise<string[]> {
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest()
  if (error) throw error
  return (results ?? []).map((r) => r.migrationName)
}
