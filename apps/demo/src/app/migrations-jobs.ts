import { type Kysely, type Migration, sql } from 'kysely'
import { photoOutbox } from './photo-job.js'

/** Stage 9's tables: the job outbox and the thumbnails the workers make. */
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
}
