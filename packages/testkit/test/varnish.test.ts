import { randomUUID } from 'node:crypto'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startVarnish, type VarnishServer } from '../src/index.js'

/** An origin that counts requests per path and answers with the headers the test asked for. */
class CountingOrigin {
  readonly counts = new Map<string, number>()
  readonly headers = new Map<string, Record<string, string>>()
  #server: Server | undefined
  port = 0

  async start(port = 0): Promise<void> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0] as string
      const count = (this.counts.get(path) ?? 0) + 1
      this.counts.set(path, count)
      res.writeHead(200, { 'content-type': 'text/plain', ...this.headers.get(path) })
      res.end(`${path} #${count}`)
    })
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    this.port = (server.address() as AddressInfo).port
    this.#server = server
  }

  async stop(): Promise<void> {
    const server = this.#server
    if (!server) return
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    this.#server = undefined
  }

  served(path: string): number {
    return this.counts.get(path) ?? 0
  }
}

interface EdgeResponse {
  status: number
  body: string
  headers: Record<string, string | string[] | undefined>
}

function send(
  url: string,
  init: { method?: string; headers?: Record<string, string>; localAddress?: string } = {},
) {
  return new Promise<EdgeResponse>((resolve, reject) => {
    // A fresh connection each time: a kept-alive socket to a killed edge would hang up, not refuse.
    const req = request(url, {
      method: init.method ?? 'GET',
      headers: init.headers,
      localAddress: init.localAddress,
      agent: false,
    })
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString(),
          headers: res.headers,
        }),
      )
    })
    req.on('error', reject)
    req.end()
  })
}

const path = () => `/asset-${randomUUID()}.js`

describe('startVarnish', () => {
  const origin = new CountingOrigin()
  let edge: VarnishServer

  beforeAll(async () => {
    await origin.start()
    edge = await startVarnish({ backend: { host: '127.0.0.1', port: origin.port } })
  })

  afterAll(async () => {
    await edge?.dispose()
    await origin.stop()
  })

  it('serves the second request from the edge: HIT, origin not asked again, counters move', async () => {
    const p = path()
    origin.headers.set(p, { 'cache-control': 'public, max-age=300' })
    const before = await edge.counters()
    const first = await send(`${edge.url}${p}`)
    const second = await send(`${edge.url}${p}`)
    expect(first.headers['x-cache']).toBe('MISS')
    expect(second.headers['x-cache']).toBe('HIT')
    expect(second.body).toBe(`${p} #1`)
    expect(origin.served(p)).toBe(1)
    const after = await edge.counters()
    expect(after.hits - before.hits).toBe(1)
    expect(after.misses - before.misses).toBe(1)
  })

  it('does not cache what the origin marks no-cache', async () => {
    const p = path()
    origin.headers.set(p, { 'cache-control': 'no-cache' })
    await send(`${edge.url}${p}`)
    const second = await send(`${edge.url}${p}`)
    expect(second.headers['x-cache']).toBe('MISS')
    expect(origin.served(p)).toBe(2)
  })

  it('honours s-maxage over max-age and expires at the TTL', async () => {
    const p = path()
    origin.headers.set(p, { 'cache-control': 'public, max-age=600, s-maxage=2' })
    await send(`${edge.url}${p}`)
    expect((await send(`${edge.url}${p}`)).headers['x-cache']).toBe('HIT')
    await sleep(3_000)
    const later = await send(`${edge.url}${p}`)
    expect(later.headers['x-cache']).toBe('MISS')
    expect(later.body).toBe(`${p} #2`)
  })

  it('PURGE drops one URL; the next request misses', async () => {
    const p = path()
    origin.headers.set(p, { 'cache-control': 'public, max-age=300' })
    await send(`${edge.url}${p}`)
    const purged = await send(`${edge.url}${p}`, { method: 'PURGE' })
    expect(purged.status).toBe(200)
    const next = await send(`${edge.url}${p}`)
    expect(next.headers['x-cache']).toBe('MISS')
    expect(origin.served(p)).toBe(2)
  })

  it('BAN by Surrogate-Key drops exactly the objects tagged with that key, and hides the keys', async () => {
    const tag = `t${randomUUID().slice(0, 8)}`
    const [a, b, c] = [path(), path(), path()]
    origin.headers.set(a, { 'cache-control': 'max-age=300', 'surrogate-key': `${tag}.a shared-${tag}` })
    origin.headers.set(b, { 'cache-control': 'max-age=300', 'surrogate-key': `${tag}.b shared-${tag}` })
    origin.headers.set(c, { 'cache-control': 'max-age=300', 'surrogate-key': `${tag}xa shared-${tag}` })
    for (const p of [a, b, c])
      expect((await send(`${edge.url}${p}`)).headers['surrogate-key']).toBeUndefined()

    const banned = await send(`${edge.url}/`, { method: 'BAN', headers: { 'surrogate-key': `${tag}.a` } })
    expect(banned.status).toBe(200)
    expect((await send(`${edge.url}${a}`)).headers['x-cache']).toBe('MISS')
    expect((await send(`${edge.url}${b}`)).headers['x-cache']).toBe('HIT')
    // The "." is literal: "<tag>xa" is not "<tag>.a".
    expect((await send(`${edge.url}${c}`)).headers['x-cache']).toBe('HIT')

    await send(`${edge.url}/`, { method: 'BAN', headers: { 'surrogate-key': `nothing shared-${tag}` } })
    for (const p of [a, b, c]) expect((await send(`${edge.url}${p}`)).headers['x-cache']).toBe('MISS')
  })

  it('refuses a BAN without keys or with keys that are not plain tokens', async () => {
    expect((await send(`${edge.url}/`, { method: 'BAN' })).status).toBe(400)
    const bad = await send(`${edge.url}/`, { method: 'BAN', headers: { 'surrogate-key': 'a|.*' } })
    expect(bad.status).toBe(400)
  })

  it('stale-while-revalidate: past the TTL serves the stale copy and refreshes in the background', async () => {
    const p = path()
    origin.headers.set(p, { 'cache-control': 'max-age=1, stale-while-revalidate=60' })
    await send(`${edge.url}${p}`)
    await sleep(1_500)
    const stale = await send(`${edge.url}${p}`)
    expect(stale.headers['x-cache']).toBe('HIT')
    expect(stale.headers['x-cache-stale']).toBe('1')
    expect(stale.body).toBe(`${p} #1`)
    const refreshed = await waitForBody(`${edge.url}${p}`, `${p} #2`)
    expect(refreshed.headers['x-cache']).toBe('HIT')
    expect(origin.served(p)).toBe(2)
  })
})

describe('startVarnish: stale-if-error, restarts and the purge ACL', () => {
  const origin = new CountingOrigin()
  let edge: VarnishServer

  beforeAll(async () => {
    await origin.start()
    edge = await startVarnish({
      backend: { host: '127.0.0.1', port: origin.port },
      purgeAllowedFrom: ['127.0.0.1'],
    })
  })

  afterAll(async () => {
    await edge?.dispose()
    await origin.stop()
  })

  it('past the TTL with the origin up, fetches synchronously; with it down, serves the last copy', async () => {
    const p = path()
    origin.headers.set(p, { 'cache-control': 'max-age=1, stale-if-error=60' })
    await send(`${edge.url}${p}`)
    await sleep(1_500)
    // Stale-if-error is not stale-while-revalidate: the origin is up, so the client gets a fresh copy.
    const fresh = await send(`${edge.url}${p}`)
    expect(fresh.body).toBe(`${p} #2`)
    expect(fresh.headers['x-cache']).toBe('MISS')

    await sleep(1_500)
    const port = origin.port
    await origin.stop()
    const whileDown = await send(`${edge.url}${p}`)
    expect(whileDown.status).toBe(200)
    expect(whileDown.body).toBe(`${p} #2`)
    expect(whileDown.headers['x-cache-stale']).toBe('1')

    // A URL the edge never saw has no copy to fall back on.
    const unseen = await send(`${edge.url}${path()}`).finally(() => origin.start(port))
    expect(unseen.status).toBe(503)
  })

  it('PURGE and BAN from an address outside the ACL are refused', async () => {
    const p = path()
    origin.headers.set(p, { 'cache-control': 'max-age=300' })
    await send(`${edge.url}${p}`)
    const purge = await send(`${edge.url}${p}`, { method: 'PURGE', localAddress: '127.0.0.2' })
    expect(purge.status).toBe(403)
    const ban = await send(`${edge.url}/`, {
      method: 'BAN',
      headers: { 'surrogate-key': 'x' },
      localAddress: '127.0.0.2',
    })
    expect(ban.status).toBe(403)
    const after = await send(`${edge.url}${p}`)
    expect(after.body).toBe(`${p} #1`)
    expect(after.headers['x-cache']).toBe('HIT')
  })

  it('kill() makes the edge refuse connections; start() serves again with an empty cache', async () => {
    const p = path()
    origin.headers.set(p, { 'cache-control': 'max-age=300' })
    await send(`${edge.url}${p}`)
    await edge.kill()
    await expect(send(`${edge.url}${p}`)).rejects.toThrow(/ECONNREFUSED|ECONNRESET/)
    await edge.start()
    expect((await send(`${edge.url}${p}`)).headers['x-cache']).toBe('MISS')
    const counters = await edge.counters()
    expect(counters.misses).toBe(1)
    expect(counters.hits).toBe(0)
  })
})

async function waitForBody(url: string, body: string): Promise<EdgeResponse> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const response = await send(url)
    if (response.body === body) return response
    await sleep(50)
  }
  throw new Error(`${url} never answered ${body}`)
}
