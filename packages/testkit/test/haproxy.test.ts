import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type HaproxyServer, startHaproxy } from '../src/index.js'

/** A tiny HTTP server that answers with its own name (and 200 on /healthz). */
async function namedServer(name: string): Promise<{ name: string; port: number; server: Server }> {
  const server = createServer((req, res) => {
    res.setHeader('connection', 'close')
    res.end(req.url === '/healthz' ? 'ok' : name)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { name, port: (server.address() as AddressInfo).port, server }
}

async function answers(lb: HaproxyServer, count: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>()
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${lb.url}/who`)
    const body = response.ok ? await response.text() : `status-${response.status}`
    seen.set(body, (seen.get(body) ?? 0) + 1)
  }
  return seen
}

describe('startHaproxy', () => {
  let lb: HaproxyServer
  let web: Awaited<ReturnType<typeof namedServer>>[]

  beforeAll(async () => {
    web = await Promise.all(['web-1', 'web-2', 'web-3'].map(namedServer))
    lb = await startHaproxy({
      backends: web.slice(0, 2).map(({ name, port }) => ({ name, port })),
      checkIntervalMs: 200,
    })
    await lb.waitForServer('web-1', 'UP')
    await lb.waitForServer('web-2', 'UP')
  })

  afterAll(async () => {
    await lb?.dispose()
    for (const { server } of web ?? []) server.close()
  })

  it('spreads requests over the healthy servers', async () => {
    const seen = await answers(lb, 10)
    expect(seen.get('web-1')).toBe(5)
    expect(seen.get('web-2')).toBe(5)
  })

  it('takes a server that stops answering out of the pool after its health checks fail', async () => {
    web[0]?.server.close()
    web[0]?.server.closeAllConnections()
    await lb.waitForServer('web-1', 'DOWN')
    const seen = await answers(lb, 10)
    expect(seen.get('web-2')).toBe(10)
  })

  it('adds a server at runtime and sends it traffic once its checks pass', async () => {
    const third = web[2]!
    await lb.addBackend({ name: third.name, port: third.port })
    await lb.waitForServer('web-3', 'UP')
    const seen = await answers(lb, 10)
    expect(seen.get('web-3')).toBe(5)
    expect(seen.get('web-2')).toBe(5)
    // It keeps idle connections for reuse as a server from the config does (HAProxy's runtime
    // default is none, which made every request open a new connection to it).
    const pools = (await lb.command('show servers conn web')).split('\n')
    const purgeDelay = (name: string) => pools.find((line) => line.startsWith(`web/${name} `))?.split(' ')[5]
    expect(purgeDelay('web-3')).toBe(purgeDelay('web-2'))
    expect(Number(purgeDelay('web-3'))).toBeGreaterThan(0)
  })

  it('removes a server at runtime', async () => {
    await lb.removeBackend('web-2')
    expect((await lb.servers()).map((s) => s.name)).toEqual(['web-1', 'web-3'])
    const seen = await answers(lb, 6)
    expect(seen.get('web-3')).toBe(6)
  })

  it('refuses a backend name HAProxy could misread', async () => {
    await expect(lb.addBackend({ name: 'bad name', port: 1 })).rejects.toThrow(/not valid/)
  })
})

describe('startHaproxy({ requestIds: true })', () => {
  it('sends each request to the server with a unique X-Request-Id and logs that ID', async () => {
    const server = createServer((req, res) => {
      res.setHeader('connection', 'close')
      res.end(req.url === '/healthz' ? 'ok' : String(req.headers['x-request-id'] ?? ''))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const lb = await startHaproxy({
      backends: [{ name: 'web-1', port: (server.address() as AddressInfo).port }],
      checkIntervalMs: 200,
      requestIds: true,
    })
    try {
      await lb.waitForServer('web-1', 'UP')
      const ids = [await (await fetch(`${lb.url}/a`)).text(), await (await fetch(`${lb.url}/b`)).text()]
      expect(ids[0]).toMatch(/^[0-9a-f-]{36}$/)
      expect(ids[1]).not.toBe(ids[0])
      const log = () => readFileSync(join(lb.dir, 'haproxy.log'), 'utf8')
      await expect.poll(log).toContain(`request_id=${ids[1]} status=200 server=web-1`)
      expect(log()).toContain(`request_id=${ids[0]} status=200 server=web-1`)
    } finally {
      await lb.dispose()
      server.close()
    }
  })
})
