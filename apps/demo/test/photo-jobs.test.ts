import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type PostgresCluster, type RedisServer, startPostgres, startRedis } from '@scale/testkit'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp, type DemoApp } from '../src/app/app.js'
import { parseAppConfig } from '../src/app/config.js'
import { migrateToLatest } from '../src/app/migrations.js'
import { seedDatabase } from '../src/app/seed.js'
import { THUMBNAIL_SIZE } from '../src/app/thumbnail.js'
import { WorkerProcess } from '../src/topology/worker.js'

let database: PostgresCluster
let redis: RedisServer
let app: DemoApp
let url: string
const workers: WorkerProcess[] = []

beforeAll(async () => {
  ;[database, redis] = await Promise.all([startPostgres(), startRedis()])
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: new pg.Pool(database.primary.connection) }),
  })
  await migrateToLatest(db)
  await db.destroy()
  await seedDatabase(database.primary.connection, { seed: 3, users: 20 })
  app = await buildApp(parseAppConfig({ name: 'web', primary: database.primary.url, logLevel: 'silent' }))
  url = await app.fastify.listen({ host: '127.0.0.1', port: 0 })
}, 120_000)

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()))
  await app?.close()
  await redis?.dispose()
  await database?.stop()
})

const count = async (table: string) =>
  Number((await database.primary.query(`select count(*)::int as n from ${table}`))[0]?.n)

async function upload(body: unknown) {
  const response = await fetch(`${url}/photos`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: response.status, json: (await response.json()) as { id: number } }
}

function startWorker(name: string): Promise<WorkerProcess> {
  const worker = new WorkerProcess(
    { name, primary: database.primary.url, redis: redis.url },
    mkdtempSync(join(tmpdir(), 'demo-worker-')),
  )
  workers.push(worker)
  return worker.start().then(() => worker)
}

describe('photo uploads through the job queue', () => {
  it('refuses a bad upload with 400 and stores neither a photo nor a job', async () => {
    const [photos, jobs] = [await count('photos'), await count('scale_jobs_outbox')]
    expect((await upload({ userId: 1, caption: '', hue: 400 })).status).toBe(400)
    expect([await count('photos'), await count('scale_jobs_outbox')]).toEqual([photos, jobs])
  })

  it('makes a square JPEG thumbnail of every upload once a worker runs (a SIGKILLed one first)', async () => {
    const ids: number[] = []
    for (let n = 0; n < 30; n++) {
      const { status, json } = await upload({ userId: 1 + (n % 20), caption: `photo ${n}`, hue: n * 11 })
      expect(status).toBe(201)
      ids.push(json.id)
    }
    // Not processed yet: no worker runs.
    expect((await fetch(`${url}/thumbnails/${ids[0]}.jpg`)).status).toBe(404)
    const first = await startWorker('worker-a')
    await first.kill()
    await startWorker('worker-b')
    const done = async () =>
      Number(
        (
          await database.primary.query(
            'select count(*)::int as n from photo_thumbnails where photo_id = any($1)',
            [ids],
          )
        )[0]?.n,
      )
    await expect.poll(done, { timeout: 60_000, interval: 250 }).toBe(ids.length)

    const response = await fetch(`${url}/thumbnails/${ids[0]}.jpg`)
    expect(response.headers.get('content-type')).toBe('image/jpeg')
    const meta = await sharp(Buffer.from(await response.arrayBuffer())).metadata()
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', THUMBNAIL_SIZE, THUMBNAIL_SIZE])
  }, 120_000)
})
