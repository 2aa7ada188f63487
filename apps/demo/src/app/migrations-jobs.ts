import { type Kysely, type Migration, sql } from 'kysely'
import { photoOutbox } from './photo-job.js'

/** Stage 9's tables (the job outbox, the thumbnails the workers make) and the browser pages' (sign-ups, uploaded originals). */
export const jobMigrations: Record<string, Migration> = {
  '003-photo-jobs': {
    async up(db: Kysely<unknown>) {
      await photoOutbox.createTable(db)
      await db.schema
        .createTable('photo_thumbnails')
        .addColumn('photo_id', 'integer', (c) => c.primaryKey().references('photos.id'))
        .addColumn('jpeg', 'bytea', (c) => c.notNull())
        .addColumn('worker', 'text', (c) => c.notNull())
        .addColumn('processed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute()
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('photo_thumbnails').execute()
      await db.schema.dropTable(photoOutbox.table).execute()
    },
  },
  '004-browser-uploads': {
    async up(db: Kysely<unknown>) {
      // Seeded users have IDs from 1; people who sign up get theirs from here, far above.
      await sql`create sequence users_signup_id start 1000000000`.execute(db)
      await db.schema
        .createTable('photo_originals')
        .addColumn('photo_id', 'integer', (c) => c.primaryKey().references('photos.id'))
        .addColumn('bytes', 'bytea', (c) => c.notNull())
        .execute()
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('photo_originals').execute()
      await sql`drop sequence users_signup_id`.execute(db)
    },
  },
}
