import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { type PostgresCluster, type RedisServer, startPostgres, startRedis } from '@scale/testkit'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { buildApp, type DemoApp } from '../src/app/app.js'
import { parseAppConfig } from '../src/app/config.js'
import { migrateToLatest } from '../src/app/migrations.js'
import { seedDatabase } from '../src/app/seed.js'

/**
 * A TCP relay in front of the replica that can hold what clients send: a query sent while it is
 * held stays in flight (a slow replica read) until `release()`.
 */
class HoldingRelay {
  readonly server: Server
  #held = false
  readonly #waiting: (() => void)[] = []
  readonly #sockets = new Set<Socket>()

  constructor(target: number) {
    this.server = createServer((client) => {
      const upstream = createConnection({ host: '127.0.0.1', port: target })
      this.#sockets.add(client).add(upstream)
      client.on('data', (chunk) => {
        if (this.#held) this.#waiting.push(() => upstream.write(chunk))
        else upstream.write(chunk)
      })
      upstream.pipe(client)
      const end = () => {
        client.destroy()
        upstream.destroy()
      }
      client.on('error', end).on('close', end)
      upstream.on('error', end).on('close', end)
    })
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    return (this.server.address() as { port: number }).port
  }

  hold(): void {
    this.#held = true
  }

  release(): void {
    this.#held = false
    for (const send of this.#waiting.splice(0)) send()
  }

  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}

let database: PostgresCluster
let redis: RedisServer
let relay: HoldingRelay
let web: DemoApp[] = []
let urls: string[] = []

beforeAll(async () => {
  ;[database, redis] = await Promise.all([startPostgres({ replicas: 1 }), startRedis()])
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: new pg.Pool(database.primary.connection) }),
  })
  await migrateToLatest(db)
  await db.destroy()
  await seedDatabase(database.primary.connection, { seed: 3, users: 20 })
  await database.waitForReplication()
  const replica = database.replicas[0]!
  relay = new HoldingRelay(replica.port)
  const relayUrl = `postgres://${replica.user}@127.0.0.1:${await relay.listen()}/${replica.database}`
  // Two web servers of stage 5: reads on the replica (through the relay), the cache in Redis.
  const config = (name: string) =>
    parseAppConfig({
      name,
      primary: database.primary.url,
      replicas: [relayUrl],
      redis: redis.url,
      cache: true,
      logLevel: 'silent',
    })
  web = [await buildApp(config('web-a')), await buildApp(config('web-b'))]
  urls = await Promise.all(web.map((app) => app.fastify.listen({ host: '127.0.0.1', port: 0 })))
})

afterAll(async () => {
  relay?.release()
  await Promise.all(web.map((app) => app.close()))
  await relay?.close()
  await redis?.dispose()
  await database?.stop()
})

it("a user's read-back sees their write although another request's load of that profile, begun before the write, is still running", async () => {
  const replica = database.replicas[0]!
  // The replica keeps showing the old row for a while (replication lag), and its reads are slow.
  await replica.setApplyDelay(3_000)
  relay.hold()
  // A visitor without a token reads user 5 on web-b: a cache miss, so web-b loads it from the replica.
  const earlyRead = fetch(`${urls[1]}/users/5`).then((r) => r.text())
  await new Promise((resolve) => setTimeout(resolve, 300))

  // The owner writes through web-a (primary, then the new row into the cache) and reads back on web-b.
  const write = await fetch(`${urls[0]}/users/5`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ firstName: 'Changed' }),
  })
  expect(write.status).toBe(200)
  const written = Number(write.headers.get('x-user-version'))
  const token = write.headers.get('x-consistency') ?? ''
  expect(token).not.toBe('')
  const readBack = fetch(`${urls[1]}/users/5`, { headers: { 'x-consistency': token } })
  await new Promise((resolve) => setTimeout(resolve, 300))
  relay.release() // the early load finishes now, with the replica's old row
  const answer = await readBack
  const body = (await answer.json()) as { firstName?: string }

  expect([answer.status, Number(answer.headers.get('x-user-version')), body.firstName]).toEqual([
    200,
    written,
    'Changed',
  ])
  await earlyRead
  await replica.setApplyDelay(0)
})
