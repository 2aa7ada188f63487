import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import flash from 'connect-flash'
import express from 'express'
import passport from 'passport'
import { Strategy as LocalStrategy } from 'passport-local'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expressSession } from '../src/express.js'
import { addFlash, type Sessions } from '../src/index.js'
import type { Data } from './helpers/app-routes.js'
import { CookieClient, httpRequest } from './helpers/http-client.js'
import { makeSessions } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()
let server: Server
let sessions: Sessions<Data>
let port: number

interface User {
  id: string
}

beforeAll(async () => {
  sessions = makeSessions(kit.redis)
  // An app written for express-session, unchanged but for the session middleware.
  passport.use(
    new LocalStrategy((username, password, done) => {
      if (password === 'pw') done(null, { id: username })
      else done(null, false, { message: 'wrong password' })
    }),
  )
  passport.serializeUser<string>((user, done) => done(null, (user as User).id))
  passport.deserializeUser<string>((id, done) => done(null, { id }))
  const app = express()
  app.use(expressSession(sessions))
  app.use(passport.session())
  app.use(flash())
  app.post(
    '/login',
    passport.authenticate('local', {
      successRedirect: '/private',
      failureRedirect: '/login',
      failureFlash: true,
    }),
  )
  app.get('/login', (req, res) => {
    res.json({ errors: req.flash('error') })
  })
  app.get('/private', (req, res) => {
    if (!req.user) {
      res.status(401).json({ error: 'log in first' })
      return
    }
    res.json({ user: (req.user as User).id, visits: bump(req.session as unknown as { visits?: number }) })
  })
  app.post('/logout', (req, res, next) => {
    req.logout((error) => (error ? next(error) : res.redirect('/')))
  })
  app.post('/save-then-respond', (req, res, next) => {
    const data = req.session as unknown as { note?: string }
    data.note = 'saved early'
    req.session.save((error) => (error ? next(error) : res.json({ ok: true })))
  })
  app.post('/flash-ours', (req, res) => {
    addFlash(sessions.of(req), 'info', 'saved')
    res.json({ ok: true })
  })
  app.get('/flash-theirs', (req, res) => {
    res.json({ info: req.flash('info') })
  })
  app.get('/note', (req, res) => {
    res.json({ note: (req.session as unknown as { note?: string }).note ?? null, id: req.session.id })
  })
  server = createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as AddressInfo).port
})

function bump(data: { visits?: number }): number {
  data.visits = (data.visits ?? 0) + 1
  return data.visits
}

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

describe('Express compatibility: req.session with express-session’s shape', () => {
  it('passport-local login, a protected page, flash, logout, and a new session ID on login', async () => {
    const client = new CookieClient(port, sessions.cookieName)
    expect((await client.send('GET', '/private')).status).toBe(401)

    // A failed login flashes a message (connect-flash) into an anonymous session.
    const failed = await client.send('POST', '/login?username=alice&password=nope')
    expect(failed.status).toBe(302)
    const anonymousCookie = client.cookie
    expect(anonymousCookie).toBeDefined()
    expect((await client.send('GET', '/login')).json()).toEqual({ errors: ['wrong password'] })
    expect((await client.send('GET', '/login')).json()).toEqual({ errors: [] })

    const login = await client.send('POST', '/login?username=alice&password=pw')
    expect(login.status).toBe(302)
    expect(client.cookie).toBeDefined()
    expect(client.cookie).not.toBe(anonymousCookie) // rotated on login (passport's regenerate)
    const page = await client.send('GET', '/private')
    expect(page.json()).toEqual({ user: 'alice', visits: 1 })
    expect((await client.send('GET', '/private')).json()).toEqual({ user: 'alice', visits: 2 })
    // The pre-login cookie is dead; the passport user is in the per-user index.
    const replay = await httpRequest(port, 'GET', '/private', {
      cookie: `${sessions.cookieName}=${anonymousCookie}`,
    })
    expect(replay.status).toBe(401)
    expect(await sessions.listUserSessions('alice')).toHaveLength(1)

    const loggedIn = client.cookie
    const logout = await client.send('POST', '/logout')
    expect(logout.status).toBe(302)
    expect((await client.send('GET', '/private')).status).toBe(401)
    const stale = await httpRequest(port, 'GET', '/private', { cookie: `${sessions.cookieName}=${loggedIn}` })
    expect(stale.status).toBe(401)
    expect(await sessions.listUserSessions('alice')).toEqual([])
  })

  it('"log out everywhere" reaches passport sessions', async () => {
    const phone = new CookieClient(port, sessions.cookieName)
    const laptop = new CookieClient(port, sessions.cookieName)
    await phone.send('POST', '/login?username=bob&password=pw')
    await laptop.send('POST', '/login?username=bob&password=pw')
    expect((await phone.send('GET', '/private')).status).toBe(200)
    expect(await sessions.destroyAllUserSessions('bob')).toBe(2)
    expect((await phone.send('GET', '/private')).status).toBe(401)
    expect((await laptop.send('GET', '/private')).status).toBe(401)
  })

  it('req.session.save() stores before the response; req.session.id is stable and not the secret', async () => {
    const client = new CookieClient(port, sessions.cookieName)
    await client.send('POST', '/save-then-respond')
    const first = (await client.send('GET', '/note')).json()
    expect(first.note).toBe('saved early')
    expect((await client.send('GET', '/note')).json().id).toBe(first.id)
    expect(client.cookie).not.toContain(first.id)
  })

  it('addFlash (this package) and req.flash (connect-flash) share the messages', async () => {
    const client = new CookieClient(port, sessions.cookieName)
    await client.send('POST', '/flash-ours')
    expect((await client.send('GET', '/flash-theirs')).json()).toEqual({ info: ['saved'] })
    expect((await client.send('GET', '/flash-theirs')).json()).toEqual({ info: [] })
  })
})
