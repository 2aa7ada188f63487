import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import express from 'express'
import Fastify, { type FastifyReply } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expressSession } from '../src/express.js'
import { fastifySession } from '../src/fastify.js'
import { SessionHeadersSentError, type Sessions } from '../src/index.js'
import { withSession } from '../src/node.js'
import type { Data } from './helpers/app-routes.js'
import { httpRequest } from './helpers/http-client.js'
import { makeSessions } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()
let dir: string
const servers: Server[] = []

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sessions-sendfile-'))
  writeFileSync(join(dir, 'page.html'), '<p>hello</p>')
})

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
  rmSync(dir, { recursive: true, force: true })
})

type Respond = (res: ServerResponse) => void

/** Every way a plain `node:http` response can be sent. */
const nodePaths: Record<string, Respond> = {
  'end()': (res) => res.end('ok'),
  'writeHead(status, headers object) + end()': (res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('ok')
  },
  'writeHead(status, message, headers object)': (res) => {
    res.writeHead(200, 'Fine', { 'content-type': 'text/plain' })
    res.end('ok')
  },
  'writeHead(status, headers array) + end()': (res) => {
    res.writeHead(200, ['content-type', 'text/plain'])
    res.end('ok')
  },
  'writeHead with its own Set-Cookie (both arrive)': (res) => {
    res.writeHead(200, { 'Set-Cookie': 'theme=dark; Path=/' })
    res.end('ok')
  },
  'write() + end()': (res) => {
    res.write('o')
    res.end('k')
  },
  'flushHeaders() + end()': (res) => {
    res.flushHeaders()
    res.end('ok')
  },
  'stream.pipe(res)': (res) => {
    Readable.from(['o', 'k']).pipe(res)
  },
}

/** The Express ways on top of the node ones (Express's `res` is a node response). */
const expressPaths: Record<string, (res: express.Response) => void> = {
  ...nodePaths,
  'res.json()': (res) => {
    res.json({ ok: true })
  },
  'res.send()': (res) => {
    res.send('ok')
  },
  'res.redirect()': (res) => res.redirect('/elsewhere'),
  'res.sendFile()': (res) => res.sendFile(join(dir, 'page.html')),
}

/**
 * The Fastify ways: `reply.send` of each kind of payload, and every node way on `reply.raw`
 * after `reply.hijack()` (Fastify's hooks no longer run then; only the `writeHead`/`end` hooks
 * on the raw response can carry the cookie).
 */
type FastifyRespond = (reply: FastifyReply) => unknown
const fastifyPaths: Record<string, FastifyRespond> = {
  'reply.send(string)': (reply) => reply.send('ok'),
  'reply.send(object)': (reply) => reply.send({ ok: true }),
  'reply.send(stream)': (reply) => reply.type('text/plain').send(Readable.from(['o', 'k'])),
  'reply.redirect()': (reply) => reply.redirect('/elsewhere'),
  'reply.header with its own Set-Cookie (both arrive)': (reply) =>
    reply.header('set-cookie', 'theme=dark; Path=/').send('ok'),
  ...Object.fromEntries(
    Object.entries(nodePaths).map(([name, respond]) => [
      `reply.hijack() + raw ${name}`,
      (reply: FastifyReply) => {
        reply.hijack()
        respond(reply.raw)
        return reply
      },
    ]),
  ),
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const server = createServer(handler)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

async function serveNode(sessions: Sessions<Data>, paths: Record<string, Respond>): Promise<number> {
  const names = Object.keys(paths)
  return listen(
    withSession(sessions, async (req, res, session) => {
      const url = new URL(req.url ?? '/', 'http://x')
      const respond = paths[names[Number(url.searchParams.get('path'))] as string] as Respond
      if (url.searchParams.get('late') === '1') {
        res.write('early ')
        await session.regenerate({ userId: 'late' })
        res.end('bytes')
        return
      }
      await session.regenerate({ userId: url.searchParams.get('user') as string })
      respond(res)
    }),
  )
}

async function serveExpress(sessions: Sessions<Data>, paths: Record<string, Respond>): Promise<number> {
  const names = Object.keys(paths)
  const app = express()
  app.use(expressSession(sessions))
  app.get('/', async (req, res) => {
    if (req.query.late === '1') {
      res.write('early ')
      await sessions.of(req).regenerate({ userId: 'late' })
      res.end('bytes')
      return
    }
    await sessions.of(req).regenerate({ userId: String(req.query.user) })
    ;(paths[names[Number(req.query.path)] as string] as Respond)(res)
  })
  return listen(app)
}

async function serveFastify(sessions: Sessions<Data>, respondBy: Record<string, Respond>): Promise<number> {
  const paths = respondBy as unknown as Record<string, FastifyRespond>
  const names = Object.keys(paths)
  let server: Server | undefined
  const app = Fastify({
    serverFactory: (handler) => {
      server = createServer(handler)
      servers.push(server)
      return server
    },
  })
  await app.register(fastifySession(sessions))
  app.get<{ Querystring: Record<string, string> }>('/', async (request, reply) => {
    if (request.query.late === '1') {
      reply.hijack()
      reply.raw.write('early ')
      await sessions.of(request).regenerate({ userId: 'late' })
      reply.raw.end('bytes')
      return reply
    }
    await sessions.of(request).regenerate({ userId: String(request.query.user) })
    return (paths[names[Number(request.query.path)] as string] as FastifyRespond)(reply)
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return ((server as Server).address() as AddressInfo).port
}

describe.each([
  ['node', serveNode, nodePaths],
  ['express', serveExpress, expressPaths as Record<string, Respond>],
  ['fastify', serveFastify, fastifyPaths as unknown as Record<string, Respond>],
] as const)('%s adapter: the Set-Cookie reaches the client', (_adapter, serve, paths) => {
  const reported: unknown[] = []
  let sessions: Sessions<Data>
  let port: number
  beforeAll(async () => {
    sessions = makeSessions(kit.redis, { onError: (error) => reported.push(error) })
    port = await serve(sessions, paths)
  })

  it.each(Object.keys(paths).map((name, index) => [name, index] as const))('%s', async (name, index) => {
    const user = `user-${index}`
    const res = await httpRequest(port, 'GET', `/?path=${index}&user=${user}`)
    expect(res.status, name).toBeLessThan(400)
    const ours = res.setCookies.filter((line) => line.startsWith(`${sessions.cookieName}=`))
    expect(ours).toHaveLength(1)
    const cookie = (ours[0] as string).split(';')[0] as string
    // The cookie names the session that was stored, and nothing else was left behind.
    expect((await sessions.load({ cookie })).userId).toBe(user)
    expect(await sessions.listUserSessions(user)).toHaveLength(1)
    if (name.includes('its own Set-Cookie')) expect(res.setCookies).toContain('theme=dark; Path=/')
  })

  it('a login after the headers left: a typed error is reported, nothing orphaned is stored', async () => {
    const res = await httpRequest(port, 'GET', '/?late=1')
    expect(res.body).toBe('early bytes')
    expect(res.setCookies).toEqual([])
    expect(reported.some((error) => error instanceof SessionHeadersSentError)).toBe(true)
    expect(await sessions.listUserSessions('late')).toEqual([])
  })
})
