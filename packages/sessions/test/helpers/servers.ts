import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { expressSession } from '../../src/express.js'
import { fastifySession } from '../../src/fastify.js'
import { honoSession, type SessionVariables } from '../../src/hono.js'
import type { Sessions } from '../../src/index.js'
import { withSession } from '../../src/node.js'
import { type Data, route } from './app-routes.js'

export type AdapterName = 'node' | 'express' | 'fastify' | 'hono'

export interface RunningServer {
  port: number
  close: () => Promise<void>
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  )
}

function closer(server: Server): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
}

/** Serves the test application through one adapter on a free port. */
export async function startServer(adapter: AdapterName, sessions: Sessions<Data>): Promise<RunningServer> {
  switch (adapter) {
    case 'node': {
      const server = createServer(
        withSession(sessions, async (req, res, session) => {
          const { status, body } = await route(
            req.method ?? 'GET',
            new URL(req.url ?? '/', 'http://x'),
            session,
          )
          res.statusCode = status
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify(body))
        }),
      )
      return { port: await listen(server), close: closer(server) }
    }
    case 'express': {
      const app = express()
      app.use(expressSession(sessions))
      app.use(async (req, res, next) => {
        try {
          const { status, body } = await route(
            req.method,
            new URL(req.originalUrl, 'http://x'),
            sessions.of(req),
          )
          res.status(status).json(body)
        } catch (error) {
          next(error)
        }
      })
      const server = createServer(app)
      return { port: await listen(server), close: closer(server) }
    }
    case 'fastify': {
      const app = Fastify()
      await app.register(fastifySession(sessions))
      app.all('/*', async (request, reply) => {
        const { status, body } = await route(
          request.method,
          new URL(request.url, 'http://x'),
          sessions.of(request),
        )
        return reply.status(status).send(body)
      })
      await app.listen({ port: 0, host: '127.0.0.1' })
      return {
        port: (app.server.address() as AddressInfo).port,
        close: async () => {
          await app.close()
        },
      }
    }
    case 'hono': {
      const app = new Hono<{ Variables: SessionVariables<Data> }>()
      app.use(honoSession(sessions))
      app.all('*', async (c) => {
        const { status, body } = await route(c.req.method, new URL(c.req.url), c.get('session'))
        return c.json(body as object, status as 200)
      })
      const server = await new Promise<Server>((resolve) => {
        const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server))
      })
      return { port: (server.address() as AddressInfo).port, close: closer(server) }
    }
  }
}
