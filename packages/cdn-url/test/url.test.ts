import { describe, expect, it } from 'vitest'
import {
  type AssetManifest,
  AssetNotFoundError,
  CdnClosedError,
  CdnOptionsError,
  createCdn,
  PathTraversalError,
} from '../src/index.js'

const manifest: AssetManifest = {
  version: 1,
  assets: {
    'js/app.js': { file: 'js/app.3f9a1c2e.js', hash: '3f9a1c2e' },
    'favicon.ico': { file: 'favicon.ico', hash: '9b1d77aa', versioned: true },
    'img/a b+c#d?.png': { file: 'img/a b+c#d?.0badcafe.png', hash: '0badcafe' },
  },
}

describe('cdn.url', () => {
  it('gives the fingerprinted file on the CDN host, with or without a leading slash', () => {
    const cdn = createCdn({ baseUrl: 'https://cdn.example.com/', manifest })
    expect(cdn.url('js/app.js')).toBe('https://cdn.example.com/js/app.3f9a1c2e.js')
    expect(cdn.url('/js/app.js')).toBe('https://cdn.example.com/js/app.3f9a1c2e.js')
  })

  it('keeps a base path and encodes every reserved character of the file name', () => {
    const cdn = createCdn({ baseUrl: 'https://cdn.example.com/static', manifest })
    expect(cdn.url('img/a b+c#d?.png')).toBe(
      'https://cdn.example.com/static/img/a%20b%2Bc%23d%3F.0badcafe.png',
    )
  })

  it('versions files that cannot be renamed with ?v=<hash>, and any file on request', () => {
    const cdn = createCdn({ baseUrl: 'https://cdn.example.com', manifest })
    expect(cdn.url('favicon.ico')).toBe('https://cdn.example.com/favicon.ico?v=9b1d77aa')
    expect(cdn.url('js/app.js', { version: '2' })).toBe('https://cdn.example.com/js/app.3f9a1c2e.js?v=2')
  })

  it('throws AssetNotFoundError for a path the manifest lacks, or passes it through when asked', () => {
    expect(() => createCdn({ baseUrl: 'https://cdn.example.com', manifest }).url('nope.js')).toThrow(
      AssetNotFoundError,
    )
    const lenient = createCdn({ baseUrl: 'https://cdn.example.com', manifest, onMissingAsset: 'passthrough' })
    expect(lenient.url('nope.js')).toBe('https://cdn.example.com/nope.js')
    expect(createCdn({ baseUrl: 'https://cdn.example.com' }).url('any/thing.css')).toBe(
      'https://cdn.example.com/any/thing.css',
    )
  })

  it('refuses traversal in the path it is given', () => {
    const cdn = createCdn({ baseUrl: 'https://cdn.example.com' })
    for (const bad of ['../etc/passwd', 'a/./b', 'a\\b', 'a\0b'])
      expect(() => cdn.url(bad)).toThrow(PathTraversalError)
  })

  it('refuses a path with an empty segment, which the origin would not serve (one file, one URL)', () => {
    const cdn = createCdn({ baseUrl: 'https://cdn.example.com' })
    for (const bad of ['a//b.js', 'js/', 'http://evil.example/x'])
      expect(() => cdn.url(bad), bad).toThrow(expect.objectContaining({ code: 'E_CDN_PATH_INVALID' }))
    expect(cdn.url('//js/a.js')).toBe('https://cdn.example.com/js/a.js') // leading slashes: a logical path
  })

  it('verify() takes its options as an object, and refuses a bare number for `now`', () => {
    const cdn = createCdn({
      baseUrl: 'https://cdn.example.com',
      signing: { keys: [{ id: 'k1', secret: 'k'.repeat(32) }] },
    })
    const url = cdn.url('a.png', { sign: { expiresInMs: 60_000 } })
    expect(() => cdn.verify(url, (Date.now() + 120_000) as never)).toThrow(
      expect.objectContaining({ code: 'E_CDN_INVALID_OPTIONS' }),
    )
    expect(() => cdn.verify(url, { now: Date.now() + 120_000 })).toThrow(
      expect.objectContaining({ code: 'E_CDN_SIGNATURE_EXPIRED' }),
    )
  })

  it('shards deterministically across hosts, and spreads paths over all of them', () => {
    const hosts = ['https://a.cdn.example.com', 'https://b.cdn.example.com', 'https://c.cdn.example.com']
    const one = createCdn({ baseUrl: hosts })
    const other = createCdn({ baseUrl: hosts })
    const used = new Set<string>()
    for (let i = 0; i < 300; i++) {
      const url = one.url(`img/${i}.png`)
      expect(other.url(`img/${i}.png`)).toBe(url)
      used.add(new URL(url).host)
    }
    expect(used.size).toBe(3)
  })

  it('switches the base at run time', () => {
    const cdn = createCdn({ baseUrl: 'https://old.example.com', manifest })
    cdn.setBaseUrl('https://new.example.com/v2')
    expect(cdn.url('js/app.js')).toBe('https://new.example.com/v2/js/app.3f9a1c2e.js')
    expect(cdn.baseUrls).toEqual(['https://new.example.com/v2'])
  })

  it('passes image parameters imgix-style or as a Cloudflare /cdn-cgi/image/ prefix', () => {
    const image = { width: 400, height: 300, fit: 'cover', format: 'webp', quality: 75, dpr: 2 }
    const imgix = createCdn({ baseUrl: 'https://img.example.com' })
    expect(imgix.url('photos/cat.jpg', { image })).toBe(
      'https://img.example.com/photos/cat.jpg?w=400&h=300&fit=cover&fm=webp&q=75&dpr=2',
    )
    const cloudflare = createCdn({ baseUrl: 'https://example.com', imageProvider: 'cloudflare' })
    expect(cloudflare.url('photos/cat.jpg', { image: { width: 400, format: 'auto' } })).toBe(
      'https://example.com/cdn-cgi/image/width=400,format=auto/photos/cat.jpg',
    )
  })

  it('points at the origin on request', () => {
    const cdn = createCdn({
      baseUrl: 'https://cdn.example.com',
      originUrl: 'http://origin.internal:8080',
      manifest,
    })
    expect(cdn.url('js/app.js', { origin: true })).toBe('http://origin.internal:8080/js/app.3f9a1c2e.js')
  })

  it('refuses bad options in the factory, with the option named', () => {
    expect(() => createCdn({ baseUrl: 'cdn.example.com' })).toThrow(CdnOptionsError)
    expect(() => createCdn({ baseUrl: [] })).toThrow(/baseUrl/)
    expect(() => createCdn({ baseUrl: 'https://x.example', health: { url: 'https://x.example/h' } })).toThrow(
      expect.objectContaining({ context: { option: 'originUrl' } }),
    )
    expect(() =>
      createCdn({ baseUrl: 'https://x.example', signing: { keys: [{ id: 'k1', secret: 'short' }] } }),
    ).toThrow(/32 bytes/)
  })

  it('takes query parameters as a plain object only, with string, number or boolean values', () => {
    const cdn = createCdn({ baseUrl: 'https://cdn.example.com' })
    expect(cdn.url('a.png', { query: { w: 400, dl: true, name: 'x y' } })).toBe(
      'https://cdn.example.com/a.png?w=400&dl=true&name=x%20y',
    )
    const pairs = [['role', 'viewer']] as unknown as Record<string, string>
    for (const query of [pairs, { a: { b: 1 } } as unknown as Record<string, string>, new Map() as never]) {
      expect(() => cdn.url('a.png', { query })).toThrow(
        expect.objectContaining({ code: 'E_CDN_INVALID_OPTIONS', context: { option: 'query' } }),
      )
    }
  })

  it('throws CdnClosedError after close(), which is idempotent', async () => {
    const cdn = createCdn({ baseUrl: 'https://cdn.example.com' })
    await cdn.close()
    await cdn.close()
    expect(() => cdn.url('a.js')).toThrow(CdnClosedError)
  })

  it('counts URLs through the metrics hook, and a throwing hook never breaks a call', () => {
    const counted: string[] = []
    const warnings: string[] = []
    const cdn = createCdn({
      baseUrl: 'https://cdn.example.com',
      metrics: {
        increment(name) {
          counted.push(name)
          throw new Error('broken hook')
        },
      },
      logger: { info() {}, warn: (_o, message) => warnings.push(message), error() {} },
    })
    expect(cdn.url('a.js')).toBe('https://cdn.example.com/a.js')
    expect(cdn.url('b.js')).toBe('https://cdn.example.com/b.js')
    expect(counted).toEqual(['cdn_urls_total', 'cdn_urls_total'])
    expect(warnings).toHaveLength(1)
  })
})
