import { type PostgresCluster, type RedisServer, startPostgres, startRedis } from '@scale/testkit'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BODY_LIMIT_BYTES, buildApp, type DemoApp } from '../src/app/app.js'
import { parseAppConfig } from '../src/app/config.js'
import { migrateToLatest } from '../src/app/migrations.js'
import { seedDatabase } from '../src/app/seed.js'
import { SEED_PASSWORD, seedUser, seedUsername } from '../src/app/seed-data.js'

const SEED = 7
const USERS = 300

let database: PostgresCluster
let redis: RedisServer
/** Two web servers of one deployment: same Postgres, same Redis, sessions and cache on. */
let web: [DemoApp, DemoApp]
let urls: [string, string]

beforeAll(async () => {
  ;[database, redis] = await Promise.all([startPostgres(), startRedis()])
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: new pg.Pool(database.primary.connection) }),
  })
  await migrateToLatest(db)
  await db.destroy()
  await seedDatabase(database.primary.connection, { seed: SEED, users: USERS })
  const config = (name: string) =>
    parseAppConfig({
      name,
      primary: database.primary.url,
      redis: redis.url,
      cache: true,
      sessions: true,
      logLevel: 'silent',
    })
  web = [await buildApp(config('web-a')), await buildApp(config('web-b'))]
  urls = (await Promise.all(web.map((app) => app.fastify.listen({ host: '127.0.0.1', port: 0 })))) as [
    string,
    string,
  ]
})

afterAll(async () => {
  await Promise.all((web ?? []).map((app) => app.close()))
  await redis?.dispose()
  await database?.stop()
})

async function request(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  server = 0,
) {
  const response = await fetch(`${urls[server as 0 | 1]}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  })
  const text = await response.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {}
  return { status: response.status, json, headers: response.headers }
}

async function storedRow(id: number) {
  const [row] = await database.primary.query('select * from users where id = $1', [id])
  return row
}

async function logIn(userId: number, server = 0): Promise<string> {
  const response = await request(
    'POST',
    '/login',
    { username: seedUsername(userId), password: SEED_PASSWORD },
    {},
    server,
  )
  expect(response.status).toBe(200)
  return response.headers.get('set-cookie')!.split(';')[0]!
}

describe('GET /users/:id', () => {
  it("returns the seed's user JSON, exactly its fields", async () => {
    for (const id of [1, 42, USERS]) {
      const { status, json } = await request('GET', `/users/${id}`)
      expect(status).toBe(200)
      expect(json).toStrictEqual(seedUser(SEED, id))
      expect(Object.keys(json as object)).toEqual(['id', 'firstName', 'lastName', 'address', 'phoneNumbers'])
    }
  })

  it('answers 404 with a JSON error for a user that does not exist', async () => {
    const { status, json } = await request('GET', `/users/${USERS + 1}`)
    expect(status).toBe(404)
    expect(json).toMatchObject({ error: { code: 'E_USER_NOT_FOUND' } })
  })

  it.each(['abc', '0', '-1', '1.5', '1e3', '99999999999', '%20', '01'])(
    'refuses the ID %j with 400',
    async (id) => {
      const { status, json } = await request('GET', `/users/${id}`)
      expect(status).toBe(400)
      expect(json).toMatchObject({ error: { code: 'E_INVALID_INPUT' } })
    },
  )
})

describe('profile updates', () => {
  it('PATCH changes the fields given, bumps the version, and the next read sees it (cache updated)', async () => {
    const cookie = await logIn(10)
    const before = await request('GET', '/users/10')
    const version = Number(before.headers.get('x-user-version'))
    const patched = await request('PATCH', '/users/10', { firstName: 'Grace' }, { cookie })
    expect(patched.status).toBe(200)
    expect(Number(patched.headers.get('x-user-version'))).toBe(version + 1)
    const after = await request('GET', '/users/10', undefined, {}, 1)
    expect(after.json).toStrictEqual({ ...seedUser(SEED, 10), firstName: 'Grace' })
  })

  it('PUT replaces the whole profile', async () => {
    const cookie = await logIn(11)
    const profile = {
      firstName: 'Alan',
      lastName: 'Turing',
      address: { streetAddress: '1 Bletchley Park', city: 'Milton Keynes', state: 'MK', postalCode: '12345' },
      phoneNumbers: [{ type: 'work', number: '555 010-1912' }],
    }
    const put = await request('PUT', '/users/11', profile, { cookie })
    expect(put.status).toBe(200)
    expect(put.json).toStrictEqual({ id: 11, ...profile })
    expect((await request('GET', '/users/11', undefined, {}, 1)).json).toStrictEqual({ id: 11, ...profile })
  })

  const bad: [string, string, unknown, number][] = [
    ['a wrong type', 'PATCH', { firstName: 3 }, 400],
    ['an unknown field', 'PATCH', { firstName: 'Eve', isAdmin: true }, 400],
    ['an unknown nested field', 'PATCH', { address: { ...seedUser(SEED, 20).address, country: 'US' } }, 400],
    ['an empty change', 'PATCH', {}, 400],
    ['a bad phone type', 'PATCH', { phoneNumbers: [{ type: 'pager', number: '1234' }] }, 400],
    ['an incomplete PUT', 'PUT', { firstName: 'Eve' }, 400],
    ['null', 'PATCH', null, 400],
    ['an array', 'PATCH', [{ firstName: 'Eve' }], 400],
    ['malformed JSON', 'PATCH', '{"firstName": ', 400],
    ['a body over the limit', 'PATCH', { lastName: 'x'.repeat(BODY_LIMIT_BYTES) }, 413],
  ]
  it.each(bad)(
    'refuses %s with a 4xx JSON error and stores nothing',
    async (_what, method, body, expected) => {
      const cookie = await logIn(20)
      const before = await storedRow(20)
      const { status, json } = await request(method, '/users/20', body, { cookie })
      expect(status).toBe(expected)
      expect(json).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } })
      expect(await storedRow(20)).toStrictEqual(before)
    },
  )

  it('refuses a body that is not JSON with 415', async () => {
    const cookie = await logIn(20)
    const before = await storedRow(20)
    const response = await fetch(`${urls[0]}/users/20`, {
      method: 'PATCH',
      headers: { 'content-type': 'text/plain', cookie },
      body: 'firstName=Eve',
    })
    expect(response.status).toBe(415)
    expect(await storedRow(20)).toStrictEqual(before)
  })

  it('refuses a change without login (401) and to another user (403), storing nothing', async () => {
    const before = await storedRow(30)
    expect((await request('PATCH', '/users/30', { firstName: 'Eve' })).status).toBe(401)
    const cookie = await logIn(31)
    expect((await request('PATCH', '/users/30', { firstName: 'Eve' }, { cookie })).status).toBe(403)
    expect(await storedRow(30)).toStrictEqual(before)
  })
})

describe('login', () => {
  it('survives a request served by a different web server', async () => {
    const cookie = await logIn(50, 0)
    const me = await request('GET', '/me', undefined, { cookie }, 1)
    expect(me.json).toEqual({ userId: 50, server: 'web-b' })
    const patched = await request('PATCH', '/users/50', { lastName: 'Elsewhere' }, { cookie }, 1)
    expect(patched.status).toBe(200)
  })

  it('logout on one server ends the session on the other', async () => {
    const cookie = await logIn(51, 0)
    expect((await request('POST', '/logout', undefined, { cookie }, 1)).status).toBe(200)
    expect((await request('GET', '/me', undefined, { cookie }, 0)).json).toMatchObject({ userId: null })
  })

  it('refuses a wrong password and an unknown user alike (401), and bad login input (400)', async () => {
    const wrong = await request('POST', '/login', { username: seedUsername(1), password: 'nope' })
    const unknown = await request('POST', '/login', { username: 'nobody', password: SEED_PASSWORD })
    expect([wrong.status, unknown.status]).toEqual([401, 401])
    expect(wrong.json).toStrictEqual(unknown.json)
    expect((await request('POST', '/login', { username: 1, password: [] })).status).toBe(400)
  })
})

describe('pages, assets and metrics', () => {
  it('serves the profile page with its stylesheet and photos', async () => {
    const response = await fetch(`${urls[0]}/u/3`)
    const html = await response.text()
    expect(response.headers.get('content-type')).toMatch(/text\/html/)
    expect(html).toContain(seedUser(SEED, 3).lastName)
    expect(html).toMatch(/href="\/assets\/app\.css\?v=[0-9a-f]{10}"/)
    expect(html).toMatch(/src="\/photos\/3\.svg"/)
    const photo = await fetch(`${urls[0]}/photos/3.svg`)
    expect(photo.headers.get('cache-control')).toContain('immutable')
    expect(await photo.text()).toContain('<svg')
  })

  it('API answers may not be kept by a shared cache', async () => {
    expect((await request('GET', '/users/1')).headers.get('cache-control')).toBe('private, no-store')
  })

  it('exposes Prometheus metrics with request counts by route', async () => {
    const text = await (await fetch(`${urls[0]}/metrics`)).text()
    expect(text).toMatch(/http_requests_total\{[^}]*route="\/users\/:id"[^}]*\} \d+/)
    expect(text).toMatch(/db_queries_total\{[^}]*node="primary"/)
  })
})
