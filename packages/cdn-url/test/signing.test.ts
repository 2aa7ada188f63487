import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Cdn, CdnUrlError, createCdn, PathTraversalError } from '../src/index.js'
import { SECRET_A, SECRET_B, startServer, type TestServer } from './helpers.js'

// The origin answers 200 with what verified, or the error's status and code: a real HTTP round trip,
// so the signature must survive the client's URL parsing and the server's request line as is.
let verifier: Cdn
/** How far the verifying server's clock is ahead (an expired URL is tested by moving it, never by issuing one). */
let verifierAheadMs = 0
let origin: TestServer
let base: string

beforeAll(async () => {
  origin = await startServer((req, res) => {
    try {
      const verified = verifier.verify(req.url ?? '/', { now: Date.now() + verifierAheadMs })
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ path: verified.path, query: verified.query, keyId: verified.keyId }))
    } catch (error) {
      const status = error instanceof CdnUrlError ? error.statusCode : 500
      res.writeHead(status, { 'content-type': 'text/plain' })
      res.end(error instanceof CdnUrlError ? error.code : 'E_UNEXPECTED')
    }
  })
  base = origin.url
})

afterAll(async () => {
  await origin?.close()
})

const k1 = { id: 'k1', secret: SECRET_A }
const k2 = { id: 'k2', secret: SECRET_B }
const signer = (keys = [k1]) => createCdn({ baseUrl: base, signing: { keys } })

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url)
  return { status: response.status, body: await response.text() }
}

// Segments mixing what breaks naive signers (space, +, #, ?, %, &, =, unicode) with anything else.
const special = fc.constantFrom(
  ' ',
  '+',
  '#',
  '?',
  '%',
  '%20',
  '&',
  '=',
  ';',
  '~',
  '*',
  "'",
  'é',
  '漢',
  '😀',
  '\u0301',
)
const segment = fc
  .string({
    unit: fc.oneof(special, fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })),
    minLength: 1,
    maxLength: 12,
  })
  .map((s) => s.replaceAll('/', '_'))
const longSegment = fc
  .string({ unit: 'grapheme', minLength: 300, maxLength: 600 })
  .map((s) => s.replaceAll('/', '_'))
const pathArb = fc
  .array(fc.oneof({ weight: 9, arbitrary: segment }, { weight: 1, arbitrary: longSegment }), {
    minLength: 1,
    maxLength: 5,
  })
  .map((segments) => segments.join('/'))
const queryArb = fc.dictionary(
  fc
    .string({ unit: fc.oneof(special, fc.constantFrom('w', 'h', 'x')), minLength: 1, maxLength: 6 })
    .filter((key) => !['exp', 'kid', 'sig'].includes(key)),
  fc.string({
    unit: fc.oneof(special, fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })),
    maxLength: 8,
  }),
  { maxKeys: 3 },
)

const unsafe = (path: string) =>
  path.includes('\\') || path.includes('\0') || path.split('/').some((s) => s === '.' || s === '..')

/** Replaces one query parameter's raw value in a URL (the raw form, as an attacker would). */
function withParam(url: string, name: string, value: string): string {
  const [head, query = ''] = url.split('?') as [string, string?]
  const parts = query.split('&').map((part) => (part.startsWith(`${name}=`) ? `${name}=${value}` : part))
  return `${head}?${parts.join('&')}`
}

describe('signed URLs through a real HTTP request', () => {
  it('verify for any path and query, and fail after any change to path, query, expiry, key id or signature', async () => {
    const cdn = signer([k1, k2])
    verifier = cdn
    await fc.assert(
      fc.asyncProperty(pathArb, queryArb, async (path, query) => {
        if (unsafe(path)) {
          expect(() => cdn.url(path, { sign: true, query })).toThrow(PathTraversalError)
          return
        }
        const url = cdn.url(path, { sign: true, query })
        const ok = await get(url)
        expect(ok.status).toBe(200)
        const verified = JSON.parse(ok.body) as { path: string; query: [string, string][] }
        expect(verified.path).toBe(`/${path}`)
        expect(Object.fromEntries(verified.query)).toEqual(query)

        const other = cdn.url(`${path}x`)
        const tampered = [
          // another path with this path's query and signature
          `${other.split('?')[0]}?${url.split('?')[1]}`,
          // a parameter added, and (when there is one) a value changed
          url.replace('?', '?extra=1&'),
          ...Object.keys(query)
            .slice(0, 1)
            .map((key) =>
              cdn
                .url(path, { sign: true, query: { ...query, [key]: `${query[key]}!` } })
                .replace(/sig=[^&]+/, /sig=[^&]+/.exec(url)?.[0] as string),
            ),
          withParam(url, 'exp', String(Number(/exp=(\d+)/.exec(url)?.[1]) + 1)),
          withParam(url, 'kid', 'k2'),
          withParam(url, 'sig', flipOneChar(/sig=([^&]+)/.exec(url)?.[1] as string)),
        ]
        for (const bad of tampered) {
          const refused = await get(bad)
          expect(refused.status, bad).toBe(403)
          expect(refused.body).toBe('E_CDN_SIGNATURE_INVALID')
        }
      }),
      { numRuns: 120 },
    )
  })

  it('an expired URL fails with E_CDN_SIGNATURE_EXPIRED, whatever the path', async () => {
    const cdn = signer()
    verifier = cdn
    await fc.assert(
      fc.asyncProperty(
        pathArb.filter((p) => !unsafe(p)),
        fc.integer({ min: 1, max: 10_000_000 }),
        async (path, agoMs) => {
          const url = cdn.url(path, { sign: { expiresInMs: 60_000 } })
          verifierAheadMs = 60_000 + 1_000 + agoMs
          try {
            expect(await get(url)).toEqual({ status: 403, body: 'E_CDN_SIGNATURE_EXPIRED' })
          } finally {
            verifierAheadMs = 0
          }
        },
      ),
      { numRuns: 40 },
    )
  })

  it('a URL lives at least as long as asked (exp rounds up to the second), and never past a second more', () => {
    const cdn = signer()
    for (const lifetimeMs of [1, 400, 999, 1_000, 1_001, 60_000]) {
      const issuedAt = Date.now()
      const url = cdn.url('a.png', { sign: { expiresInMs: lifetimeMs } })
      const exp = Number(new URL(url).searchParams.get('exp')) * 1000
      expect(exp).toBeGreaterThanOrEqual(issuedAt + lifetimeMs)
      expect(cdn.verify(url, { now: issuedAt + lifetimeMs - 1 }).path).toBe('/a.png')
      expect(exp - (Date.now() + lifetimeMs)).toBeLessThan(1_000)
    }
  })

  it('signing.leewayMs accepts a URL that long past its expiry, for a verifier whose clock runs ahead', () => {
    const url = signer().url('a.png', { sign: { expiresInMs: 60_000 } })
    const exp = Number(new URL(url).searchParams.get('exp')) * 1000
    const lenient = createCdn({ baseUrl: base, signing: { keys: [k1], leewayMs: 5_000 } })
    expect(lenient.verify(url, { now: exp + 4_000 }).path).toBe('/a.png')
    expect(() => lenient.verify(url, { now: exp + 6_000 })).toThrow(
      expect.objectContaining({ code: 'E_CDN_SIGNATURE_EXPIRED' }),
    )
    expect(() => signer().verify(url, { now: exp })).toThrow(
      expect.objectContaining({ code: 'E_CDN_SIGNATURE_EXPIRED' }),
    )
    expect(() => createCdn({ baseUrl: base, signing: { keys: [k1], leewayMs: -1 } })).toThrow(
      expect.objectContaining({ context: { option: 'signing.leewayMs' } }),
    )
  })

  it('refuses a lifetime that would issue a dead URL: ≤ 0, NaN, an invalid or past Date, beyond what verify() reads', () => {
    const cdn = signer()
    const refused = (sign: { expiresInMs?: number; expiresAt?: Date }, option: string) =>
      expect(() => cdn.url('a.png', { sign })).toThrow(
        expect.objectContaining({ code: 'E_CDN_INVALID_OPTIONS', context: { option } }),
      )
    for (const ms of [0, -5, Number.NaN, Number.POSITIVE_INFINITY, 1e20])
      refused({ expiresInMs: ms }, 'sign.expiresInMs')
    refused({ expiresAt: new Date('x') }, 'sign.expiresAt')
    refused({ expiresAt: new Date(Date.now() - 1_000) }, 'sign.expiresAt')
    refused({ expiresAt: new Date('+275760-09-13T00:00:00Z') }, 'sign.expiresAt')
    // The latest expiry it issues still verifies.
    const far = cdn.url('a.png', { sign: { expiresAt: new Date('+033000-01-01T00:00:00Z') } })
    expect(cdn.verify(far).path).toBe('/a.png')
  })

  it('one signed URL has one spelling: a re-encoded path or query is refused, so it cannot mint new cache keys', async () => {
    const cdn = signer()
    verifier = cdn
    const url = cdn.url('private/report 2025.pdf', { sign: true, query: { dl: 'x y', a: '1' } })
    expect((await get(url)).status).toBe(200)
    const respellings = [
      url.replace('/report', '/%72eport'), // an unreserved letter percent-encoded
      url.replace('x%20y', 'x+y'), // '+' for a space in the query
      url.replace('dl=', '%64l='), // an encoded letter in a query key
      url.replace('/private/', '/private%2F'), // an encoded slash
      url.replace('/private/', '//private/'), // an empty segment
    ]
    for (const variant of respellings) {
      expect(await get(variant), variant).toMatchObject({ status: 403 })
    }
    // Lower-case hex in the path: the same bytes, another spelling.
    const unicode = cdn.url('é.png', { sign: true })
    expect((await get(unicode)).status).toBe(200)
    expect(await get(unicode.replace('%C3%A9', '%c3%a9'))).toEqual({
      status: 403,
      body: 'E_CDN_SIGNATURE_INVALID',
    })
  })

  it('a Cloudflare image URL verifies with its options segment as url() writes it', () => {
    const cdn = createCdn({ baseUrl: base, signing: { keys: [k1] }, imageProvider: 'cloudflare' })
    const url = cdn.url('photos/a b.jpg', { sign: true, image: { width: 400, format: 'auto' } })
    expect(url).toContain('/cdn-cgi/image/width=400,format=auto/photos/a%20b.jpg?')
    expect(cdn.verify(url).path).toBe('/cdn-cgi/image/width=400,format=auto/photos/a b.jpg')
  })

  it('rotation: a rotated-in key verifies, the old key verifies during the overlap, a rotated-out key fails', async () => {
    await fc.assert(
      fc.asyncProperty(
        pathArb.filter((p) => !unsafe(p)),
        async (path) => {
          const signedWithOld = signer([k1]).url(path, { sign: true })
          const signedWithNew = signer([k2, k1]).url(path, { sign: true })
          expect(signedWithNew).toContain('kid=k2')

          verifier = signer([k2, k1]) // overlap: both keys
          expect((await get(signedWithOld)).status).toBe(200)
          expect((await get(signedWithNew)).status).toBe(200)

          verifier = signer([k2]) // k1 retired
          expect(await get(signedWithOld)).toEqual({ status: 403, body: 'E_CDN_SIGNING_KEY_UNKNOWN' })
          expect((await get(signedWithNew)).status).toBe(200)
        },
      ),
      { numRuns: 40 },
    )
  })

  it('an unsigned URL is refused as missing a signature, a half-signed one as invalid', async () => {
    verifier = signer()
    expect(await get(`${base}/a.png`)).toEqual({ status: 403, body: 'E_CDN_SIGNATURE_MISSING' })
    expect(await get(`${base}/a.png?exp=9999999999`)).toEqual({
      status: 403,
      body: 'E_CDN_SIGNATURE_INVALID',
    })
    const url = signer().url('a.png', { sign: true })
    expect(await get(`${url}&sig=again`)).toEqual({ status: 403, body: 'E_CDN_SIGNATURE_INVALID' })
  })

  it('refuses to sign with a reserved parameter name', () => {
    expect(() => signer().url('a.png', { sign: true, query: { sig: 'x' } })).toThrow(/reserved/)
  })
})

function flipOneChar(signature: string): string {
  const i = signature.length >> 1
  const c = signature[i] === 'A' ? 'B' : 'A'
  return signature.slice(0, i) + c + signature.slice(i + 1)
}
