import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { serve } from '@hono/node-server'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expressOrigin } from '../src/express.js'
import { fastifyOrigin } from '../src/fastify.js'
import { honoOrigin } from '../src/hono.js'
import type { AssetManifest } from '../src/index.js'
import { buildManifest } from '../src/manifest-entry.js'

let root: string
let assets: string
let manifest: AssetManifest
let appFile: string

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'cdn-url-adapters-'))
  await mkdir(join(root, 'public/css'), { recursive: true })
  await writeFile(join(root, 'public/css/site.css'), 'body { color: red }')
  await writeFile(join(root, 'secret.txt'), 'TOP SECRET')
  assets = join(root, 'assets')
  ;({ manifest } = await buildManifest({ inputDir: join(root, 'public'), outputDir: assets }))
  appFile = manifest.assets['css/site.css']?.file as string
})

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

function raw(port: number, target: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let data = ''
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1')
    })
    socket.on('end', () => resolve({ status: Number(data.slice(9, 12)), text: data }))
    socket.on('error', reject)
    socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
  })
}

interface Running {
  port: number
  close(): Promise<void>
}

const frameworks: Record<string, () => Promise<Running>> = {
  express: async () => {
    const app = express()
    app.use('/assets', expressOrigin({ root: assets, manifest, mountPath: '/assets' }))
    // The app sees the request as it came once the origin lets it pass.
    app.use((req, res) => {
      res.status(404).send(`app 404 ${req.url}`)
    })
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s))
    })
    return {
      port: (server.address() as AddressInfo).port,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    }
  },
  fastify: async () => {
    const app = Fastify()
    await app.register(fastifyOrigin({ root: assets, manifest, mountPath: '/assets' }))
    app.setNotFoundHandler((request, reply) => reply.code(404).send(`app 404 ${request.url}`))
    await app.listen({ port: 0, host: '127.0.0.1' })
    return { port: (app.server.address() as AddressInfo).port, close: () => app.close() }
  },
  hono: async () => {
    const app = new Hono()
    app.use('/assets/*', honoOrigin({ root: assets, manifest, mountPath: '/assets' }))
    app.notFound((c) => c.text(`app 404 ${new URL(c.req.url).pathname}`, 404))
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server))
    })
    return {
      port: (server.address() as AddressInfo).port,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    }
  },
}

for (const [name, start] of Object.entries(frameworks)) {
  describe(`${name} adapter`, () => {
    let running: Running
    let base: string

    beforeAll(async () => {
      running = await start()
      base = `http://127.0.0.1:${running.port}`
    })

    afterAll(async () => {
      await running?.close()
    })

    it('serves a fingerprinted asset as immutable, with a strong ETag that revalidates to 304', async () => {
      const first = await fetch(`${base}/assets/${appFile}`)
      expect(first.status).toBe(200)
      expect(await first.text()).toBe('body { color: red }')
      expect(first.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
      expect(first.headers.get('content-type')).toBe('text/css; charset=utf-8')
      const etag = first.headers.get('etag') as string
      const again = await fetch(`${base}/assets/${appFile}`, { headers: { 'if-none-match': etag } })
      expect(again.status).toBe(304)
    })

    it('answers ranges and HEAD', async () => {
      const part = await fetch(`${base}/assets/${appFile}`, { headers: { range: 'bytes=0-3' } })
      expect(part.status).toBe(206)
      expect(await part.text()).toBe('body')
      const head = await fetch(`${base}/assets/${appFile}`, { method: 'HEAD' })
      expect(head.status).toBe(200)
      expect(head.headers.get('etag')).toMatch(/^"/)
    })

    it('refuses encoded traversal with 400 and leaves a missing asset to the app', async () => {
      const attack = await raw(running.port, '/assets/%2e%2e%2fsecret.txt')
      expect(attack.status).toBe(400)
      expect(attack.text).not.toContain('TOP SECRET')
      const missing = await fetch(`${base}/assets/nope.css`)
      expect(missing.status).toBe(404)
      expect(await missing.text()).toBe('app 404 /assets/nope.css')
    })
  })
}
