import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startVarnish, type VarnishServer } from '@scale/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCdn } from '../src/index.js'
import { createOriginHandler } from '../src/origin-entry.js'
import { SECRET_A, startServer, type TestServer } from './helpers.js'

// Signed assets behind a real Varnish edge (outside-user finding 4): the origin verifies the
// signature, so whatever the edge keeps, it serves without asking the origin. A signed response
// must therefore never outlive its signature in a shared cache.
let root: string
let origin: TestServer
let edge: VarnishServer
const originHits = new Map<string, number>()
const cdn = createCdn({
  baseUrl: 'http://edge.invalid',
  signing: { keys: [{ id: 'k1', secret: SECRET_A }] },
})
const privateOrigin = () =>
  createOriginHandler({ root, cdn, requireSignature: (path) => path.startsWith('/private/') })
const sharedOrigin = () =>
  createOriginHandler({ root, cdn, requireSignature: true, signedCaching: 'shared-until-expiry' })

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'cdn-url-edge-signed-'))
  await mkdir(join(root, 'private'), { recursive: true })
  await mkdir(join(root, 'shared'), { recursive: true })
  await writeFile(join(root, 'private/report.pdf'), '%PDF secret report')
  await writeFile(join(root, 'private/r.fedcba98.pdf'), '%PDF fingerprinted-looking name')
  await writeFile(join(root, 'shared/report.pdf'), '%PDF shared until expiry')
  origin = await startServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string
    originHits.set(path, (originHits.get(path) ?? 0) + 1)
    ;(path.startsWith('/shared/') ? sharedOrigin() : privateOrigin())(req, res)
  })
  edge = await startVarnish({ backend: { host: '127.0.0.1', port: origin.port } })
})

afterAll(async () => {
  await edge?.dispose()
  await origin?.close()
  await rm(root, { recursive: true, force: true })
})

/** The signed URL, sent to the edge instead of the CDN host it names. */
const viaEdge = (url: string) => url.replace('http://edge.invalid', edge.url)
const hits = (path: string) => originHits.get(path) ?? 0
const expiryOf = (url: string) => Number(new URL(url).searchParams.get('exp')) * 1000

async function get(url: string) {
  const response = await fetch(url)
  return {
    status: response.status,
    cacheControl: response.headers.get('cache-control') ?? '',
    xCache: response.headers.get('x-cache'),
    body: await response.text(),
  }
}

describe('signed assets through a real Varnish edge', () => {
  it('are never kept by the edge by default: every request reaches the origin, and after expiry the edge answers 403', async () => {
    // 3 s (expiry is in whole seconds): both requests fall well before it even on a loaded machine.
    const url = cdn.url('private/report.pdf', { sign: { expiresInMs: 3_000 } })
    const first = await get(viaEdge(url))
    const second = await get(viaEdge(url))
    expect([first.status, second.status]).toEqual([200, 200])
    expect(second.body).toBe('%PDF secret report')
    expect(second.xCache).toBe('MISS')
    expect(hits('/private/report.pdf')).toBe(2)
    // private: the browser may keep it, at most until the signature expires; no shared cache may.
    const maxAge = Number(/max-age=(\d+)/.exec(first.cacheControl)?.[1])
    expect(first.cacheControl).toMatch(/^private, max-age=\d+$/)
    expect(maxAge).toBeLessThanOrEqual(3)

    await sleep(Math.max(0, expiryOf(url) - Date.now()) + 50)
    const expired = await get(viaEdge(url))
    expect(expired.status).toBe(403)
    expect(expired.body).toContain('E_CDN_SIGNATURE_EXPIRED')
    expect(hits('/private/report.pdf')).toBe(3)
  })

  it('a signed file whose name looks fingerprinted is not made immutable', async () => {
    const url = cdn.url('private/r.fedcba98.pdf', { sign: { expiresInMs: 60_000 } })
    const response = await get(viaEdge(url))
    expect(response.status).toBe(200)
    expect(response.cacheControl).not.toMatch(/immutable|public/)
    expect(Number(/max-age=(\d+)/.exec(response.cacheControl)?.[1])).toBeLessThanOrEqual(60)
    await get(viaEdge(url))
    expect(hits('/private/r.fedcba98.pdf')).toBe(2)
  })

  it("signedCaching 'shared-until-expiry': the edge keeps it, never past the signature's expiry", async () => {
    const url = cdn.url('shared/report.pdf', { sign: { expiresInMs: 4_000 } })
    const before = Date.now()
    const first = await get(viaEdge(url))
    const second = await get(viaEdge(url))
    expect([first.status, second.status]).toEqual([200, 200])
    expect(second.xCache).toBe('HIT')
    expect(hits('/shared/report.pdf')).toBe(1)
    expect(first.cacheControl).toMatch(/^public, max-age=\d+$/) // no stale-while-revalidate/-if-error
    const maxAgeMs = Number(/max-age=(\d+)/.exec(first.cacheControl)?.[1]) * 1000
    expect(before + maxAgeMs).toBeLessThanOrEqual(expiryOf(url))

    await sleep(Math.max(0, expiryOf(url) - Date.now()) + 50)
    const expired = await get(viaEdge(url))
    expect(expired.status).toBe(403)
    expect(hits('/shared/report.pdf')).toBe(2)
  })
})
