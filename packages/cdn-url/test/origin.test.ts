import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { brotliCompressSync, gzipSync } from 'node:zlib'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCdn } from '../src/index.js'
import { buildManifest } from '../src/manifest-entry.js'
import { createOriginHandler } from '../src/origin-entry.js'
import { SECRET_A, startServer, type TestServer } from './helpers.js'

let root: string
let served: string
let server: TestServer
let signedServer: TestServer
let files: Record<string, string>
const body = 'console.log("hello from the origin")\n'.repeat(50)
const cdn = () =>
  createCdn({ baseUrl: signedServer.url, signing: { keys: [{ id: 'k1', secret: SECRET_A }] } })

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'cdn-url-origin-'))
  const input = join(root, 'public')
  served = join(root, 'assets')
  await mkdir(join(input, 'js'), { recursive: true })
  await writeFile(join(input, 'js/app.js'), body)
  await writeFile(join(input, 'js/app.js.br'), brotliCompressSync(body))
  await writeFile(join(input, 'js/app.js.gz'), gzipSync(body))
  await writeFile(join(input, 'favicon.ico'), 'icon')
  await writeFile(join(input, 'index.html'), '<!doctype html><title>hi</title>')
  await writeFile(join(input, 'data.json'), '{"a":1}')
  await writeFile(join(root, 'secret.txt'), 'TOP SECRET')
  const { manifest } = await buildManifest({ inputDir: input, outputDir: served })
  files = Object.fromEntries(Object.entries(manifest.assets).map(([k, v]) => [k, v.file]))
  // data.json is served under its plain name too (an asset that bypassed the build).
  await writeFile(join(served, 'data.json'), '{"a":1}')
  server = await startServer(createOriginHandler({ root: served, manifest }))
  signedServer = await startServer((req, res) =>
    createOriginHandler({ root: served, manifest, cdn: cdn(), requireSignature: true })(req, res),
  )
})

afterAll(async () => {
  await server?.close()
  await signedServer?.close()
  await rm(root, { recursive: true, force: true })
})

async function get(path: string, headers: Record<string, string> = {}, method = 'GET') {
  const response = await fetch(`${server.url}${path}`, { headers, method })
  const bytes = Buffer.from(await response.arrayBuffer())
  return { status: response.status, headers: response.headers, text: bytes.toString('latin1'), bytes }
}

/** Sends a request line byte for byte, as an attacker would (no client-side URL normalization). */
function raw(target: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1')
    let data = ''
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1')
    })
    socket.on('end', () => resolve({ status: Number(data.slice(9, 12)), text: data }))
    socket.on('error', reject)
    socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
  })
}

describe('origin: cache policy by class', () => {
  it('fingerprinted: a year, immutable; HTML: no-cache; other: short with SWR and SIE', async () => {
    const app = await get(`/${files['js/app.js']}`)
    expect(app.status).toBe(200)
    expect(app.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    expect((await get('/index.html')).headers.get('cache-control')).toBe('no-cache')
    expect((await get('/data.json')).headers.get('cache-control')).toBe(
      'public, max-age=300, stale-while-revalidate=3600, stale-if-error=86400',
    )
  })

  it('a versioned file is immutable only when asked for with its current ?v=', async () => {
    const manifestHash = /favicon/.test(files['favicon.ico'] as string)
    expect(manifestHash).toBe(true)
    const current = await get('/favicon.ico', {})
    expect(current.headers.get('cache-control')).toContain('max-age=300')
    const { manifest } = await buildManifest({
      inputDir: join(root, 'public'),
      outputDir: join(root, 'x'),
      write: false,
    })
    const hash = manifest.assets['favicon.ico']?.hash as string
    expect((await get(`/favicon.ico?v=${hash}`)).headers.get('cache-control')).toContain('immutable')
    expect((await get('/favicon.ico?v=stale')).headers.get('cache-control')).toContain('max-age=300')
  })

  it('tags responses with Surrogate-Key and Cache-Tag by logical path', async () => {
    const app = await get(`/${files['js/app.js']}`)
    expect(app.headers.get('surrogate-key')).toBe('assets js/app.js')
    expect(app.headers.get('cache-tag')).toBe('assets,js/app.js')
  })
})

describe('origin: validators, ranges, precompression', () => {
  it('answers 304 to a matching strong ETag (also listed or weak), 200 otherwise', async () => {
    const first = await get(`/${files['js/app.js']}`)
    const etag = first.headers.get('etag') as string
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/)
    for (const match of [etag, `"nope", ${etag}`, `W/${etag}`, '*']) {
      const again = await get(`/${files['js/app.js']}`, { 'if-none-match': match })
      expect(again.status).toBe(304)
      expect(again.bytes.length).toBe(0)
      expect(again.headers.get('etag')).toBe(etag)
      expect(again.headers.get('cache-control')).toContain('immutable')
    }
    expect((await get(`/${files['js/app.js']}`, { 'if-none-match': '"other"' })).status).toBe(200)
  })

  it('serves single ranges with 206, refuses unsatisfiable ones with 416, ignores a stale If-Range', async () => {
    const path = `/${files['js/app.js']}`
    const part = await get(path, { range: 'bytes=0-9' })
    expect(part.status).toBe(206)
    expect(part.text).toBe(body.slice(0, 10))
    expect(part.headers.get('content-range')).toBe(`bytes 0-9/${body.length}`)
    const suffix = await get(path, { range: 'bytes=-5' })
    expect(suffix.text).toBe(body.slice(-5))
    const open = await get(path, { range: `bytes=${body.length - 3}-` })
    expect(open.text).toBe(body.slice(-3))
    const beyond = await get(path, { range: `bytes=${body.length}-` })
    expect(beyond.status).toBe(416)
    expect(beyond.headers.get('content-range')).toBe(`bytes */${body.length}`)
    const changed = await get(path, { range: 'bytes=0-9', 'if-range': '"old"' })
    expect(changed.status).toBe(200)
    expect(changed.text).toBe(body)
  })

  it('serves the .br or .gz file when accepted, with its own ETag and Vary', async () => {
    const path = `/${files['js/app.js']}`
    const identity = await get(path, { 'accept-encoding': 'identity' })
    const br = await get(path, { 'accept-encoding': 'gzip, br' })
    expect(br.headers.get('content-encoding')).toBe('br')
    expect(br.headers.get('vary')).toBe('Accept-Encoding')
    expect(br.text).toBe(body) // fetch decodes it
    expect(br.headers.get('etag')).not.toBe(identity.headers.get('etag'))
    const gz = await get(path, { 'accept-encoding': 'gzip, br;q=0' })
    expect(gz.headers.get('content-encoding')).toBe('gzip')
    expect(identity.headers.get('content-encoding')).toBeNull()
    // A range is a range of the file itself, never of a compressed variant.
    const ranged = await get(path, { 'accept-encoding': 'br', range: 'bytes=0-3' })
    expect(ranged.headers.get('content-encoding')).toBeNull()
    expect(ranged.text).toBe(body.slice(0, 4))
  })

  it('answers HEAD with the headers only, and 405 to other methods', async () => {
    const head = await get(`/${files['js/app.js']}`, { 'accept-encoding': 'identity' }, 'HEAD')
    expect(head.status).toBe(200)
    expect(head.headers.get('content-length')).toBe(String(body.length))
    expect(head.bytes.length).toBe(0)
    const post = await get(`/${files['js/app.js']}`, {}, 'POST')
    expect(post.status).toBe(405)
    expect(post.headers.get('allow')).toBe('GET, HEAD')
  })

  it('answers 404 for a file that is not there and for a directory', async () => {
    expect((await get('/nope.js')).status).toBe(404)
    expect((await get('/js')).status).toBe(404)
  })

  it('serves a file under one URL only: //, a trailing slash or an encoded slash get the short-TTL 404', async () => {
    const file = files['js/app.js'] as string
    expect((await raw(`/${file}`)).status).toBe(200)
    for (const alias of [
      `/${file}/`,
      `//${file}`,
      `/${file.replace('/', '//')}`,
      `/${file.replace('/', '%2F')}`,
    ]) {
      const response = await raw(alias)
      expect(response.status, alias).toBe(404)
      expect(response.text, alias).toMatch(/cache-control: public, max-age=10/i)
      expect(response.text, alias).toContain('"code":"E_CDN_ASSET_NOT_FOUND"')
    }
  })

  it('with mountPath, a request outside it gets the same documented 404 (JSON body, short TTL)', async () => {
    const mounted = await startServer(createOriginHandler({ root: served, mountPath: '/assets' }))
    try {
      expect((await fetch(`${mounted.url}/assets/${files['js/app.js']}`)).status).toBe(200)
      for (const path of ['/other/x.js', '/assets/nope.js']) {
        const response = await fetch(`${mounted.url}${path}`)
        expect(response.status, path).toBe(404)
        expect(response.headers.get('cache-control'), path).toBe('public, max-age=10')
        expect(await response.json(), path).toEqual({ error: { code: 'E_CDN_ASSET_NOT_FOUND' } })
      }
    } finally {
      await mounted.close()
    }
  })
})

describe('origin: path traversal', () => {
  const attempts = [
    '/../secret.txt',
    '/js/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E%2Fsecret.txt',
    '/js/%2e%2e%2f%2e%2e%2fsecret.txt',
    '/..%5csecret.txt',
    '/js\\..\\..\\secret.txt',
    '/%5c..%5c..%5csecret.txt',
    '/secret.txt%00.js',
    '/%00',
    '/./js/app.js',
    '/%E0%A4%A',
  ]
  for (const target of attempts) {
    it(`refuses ${target} with a 4xx, never a 500, never the file`, async () => {
      const response = await raw(target)
      expect(response.status).toBeGreaterThanOrEqual(400)
      expect(response.status).toBeLessThan(500)
      expect(response.text).not.toContain('TOP SECRET')
    })
  }

  it('property: any mix of dots, slashes, backslashes, NUL and their encodings is never a 5xx nor the secret', async () => {
    const piece = fc.constantFrom(
      '..',
      '.',
      '%2e',
      '%2E',
      '%2e%2e',
      '/',
      '%2f',
      '%2F',
      '\\',
      '%5c',
      '%5C',
      '%00',
      '%',
      '%c0%ae',
      'js',
      'secret.txt',
      'app.js',
      'a',
    )
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { minLength: 1, maxLength: 12 }), async (pieces) => {
        const response = await raw(`/${pieces.join('')}`)
        expect(response.status).toBeGreaterThanOrEqual(200)
        expect(response.status).toBeLessThan(500)
        expect(response.text).not.toContain('TOP SECRET')
      }),
      { numRuns: 300 },
    )
  })

  it('names the reason in a JSON error body', async () => {
    const response = await raw('/%2e%2e%2fsecret.txt')
    expect(response.status).toBe(400)
    expect(response.text).toContain('"code":"E_CDN_PATH_TRAVERSAL"')
  })
})

describe('origin: signed URLs', () => {
  it('serves a valid signature, refuses a missing, bad or expired one with 403 and no-store', async () => {
    const signer = cdn()
    const ok = await fetch(signer.url(files['js/app.js'] as string, { sign: true }))
    expect(ok.status).toBe(200)
    const unsigned = await fetch(`${signedServer.url}/${files['js/app.js']}`)
    expect(unsigned.status).toBe(403)
    expect(await unsigned.text()).toContain('E_CDN_SIGNATURE_MISSING')
    const soonExpired = signer.url(files['js/app.js'] as string, { sign: { expiresInMs: 1 } })
    await sleep(Number(new URL(soonExpired).searchParams.get('exp')) * 1000 - Date.now() + 10)
    const expired = await fetch(soonExpired)
    expect(expired.status).toBe(403)
    expect(expired.headers.get('cache-control')).toBe('no-store')
    expect(await expired.text()).toContain('E_CDN_SIGNATURE_EXPIRED')
    const tampered = signer.url(files['js/app.js'] as string, { sign: true }).replace('kid=k1', 'kid=k9')
    expect((await fetch(tampered)).status).toBe(403)
  })
})
