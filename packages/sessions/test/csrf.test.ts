import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { afterAll, describe, expect, it } from 'vitest'
import { expressCsrf, expressSession, sessionErrorHandler } from '../src/express.js'
import { fastifyCsrf, fastifySession } from '../src/fastify.js'
import { honoCsrf, honoSession, type SessionVariables } from '../src/hono.js'
import { csrfToken, doubleSubmitToken, type Sessions, verifyDoubleSubmit } from '../src/index.js'
import type { Data } from './helpers/app-routes.js'
import { CookieClient } from './helpers/http-client.js'
import { makeSessions, SECRET } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()
const closers: (() => Promise<void>)[] = []

afterAll(async () => {
  for (const close of closers) await close()
})

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return (server.address() as AddressInfo).port
}

const apps: Record<string, (sessions: Sessions<Data>) => Promise<number>> = {
  express: async (sessions) => {
    const app = express()
    app.use(expressSession(sessions), expressCsrf(sessions))
    app.get('/form', (req, res) => {
      res.json({ token: csrfToken(sessions.of(req)) })
    })
    app.post('/transfer', (_req, res) => {
      res.json({ ok: true })
    })
    app.use(sessionErrorHandler())
    return listen(createServer(app))
  },
  fastify: async (sessions) => {
    const app = Fastify()
    await app.register(fastifySession(sessions))
    app.addHook('preHandler', fastifyCsrf(sessions))
    app.get('/form', async (request) => ({ token: csrfToken(sessions.of(request)) }))
    app.post('/transfer', async () => ({ ok: true }))
    await app.listen({ port: 0, host: '127.0.0.1' })
    closers.push(() => app.close())
    return (app.server.address() as AddressInfo).port
  },
  hono: async (sessions) => {
    const app = new Hono<{ Variables: SessionVariables<Data> }>()
    app.use(honoSession(sessions), honoCsrf())
    app.get('/form', (c) => c.json({ token: csrfToken(c.get('session')) }))
    app.post('/transfer', (c) => c.json({ ok: true }))
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server))
    })
    closers.push(
      () =>
        new Promise((resolve) => {
          server.closeAllConnections()
          server.close(() => resolve())
        }),
    )
    return (server.address() as AddressInfo).port
  },
}

describe.each(Object.keys(apps))('CSRF synchronizer token on %s', (name) => {
  it('refuses unsafe requests without the session’s token, accepts them with it', async () => {
    const sessions = makeSessions(kit.redis)
    const port = await (apps[name] as (s: Sessions<Data>) => Promise<number>)(sessions)
    const victim = new CookieClient(port, sessions.cookieName)
    const attacker = new CookieClient(port, sessions.cookieName)
    const token = (await victim.send('GET', '/form')).json().token as string
    const attackerToken = (await attacker.send('GET', '/form')).json().token as string

    const missing = await victim.send('POST', '/transfer')
    expect(missing.status).toBe(403)
    expect(missing.json().error?.code ?? missing.json().code).toBe('E_SESSION_CSRF')
    expect((await victim.send('POST', '/transfer', { 'x-csrf-token': attackerToken })).status).toBe(403)
    expect((await victim.send('POST', '/transfer', { 'x-csrf-token': 'garbage' })).status).toBe(403)
    expect((await victim.send('POST', '/transfer', { 'x-csrf-token': token })).status).toBe(200)
    // Every issued token stays valid (they are masked differently each time).
    const second = (await victim.send('GET', '/form')).json().token as string
    expect(second).not.toBe(token)
    expect((await victim.send('POST', '/transfer', { 'x-csrf-token': second })).status).toBe(200)
  })
})

describe('CSRF signed double-submit', () => {
  it('verifies only the same value in cookie and header, issued for this session', async () => {
    const sessions = makeSessions(kit.redis)
    const mine = await sessions.load({})
    const other = await sessions.load({})
    const token = doubleSubmitToken(SECRET, mine)
    expect(verifyDoubleSubmit(SECRET, mine, token, token)).toBe(true)
    expect(verifyDoubleSubmit(SECRET, mine, token, undefined)).toBe(false)
    expect(verifyDoubleSubmit(SECRET, mine, token, doubleSubmitToken(SECRET, mine))).toBe(false)
    const planted = doubleSubmitToken(SECRET, other)
    expect(verifyDoubleSubmit(SECRET, mine, planted, planted)).toBe(false)
    expect(verifyDoubleSubmit('another-secret-0123456789-0123456789-x', mine, token, token)).toBe(false)
  })
})
