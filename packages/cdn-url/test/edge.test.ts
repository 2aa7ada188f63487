import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startVarnish, type VarnishServer } from '@scale/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AssetManifest, createCdn } from '../src/index.js'
import { buildManifest } from '../src/manifest-entry.js'
import { createOriginHandler } from '../src/origin-entry.js'
import { createPurger, varnishPurge } from '../src/purge-entry.js'
import { checkPurgeAdapter } from '../src/testing.js'
import { startServer, type TestServer } from './helpers.js'

// The whole path a browser's asset request takes: cdn.url() -> a real Varnish edge -> the origin
// handler. The origin counts what reaches it, so "served by the edge" is a count, not a timing.
let root: string
let input: string
let assets: string
let origin: TestServer
let edge: VarnishServer
let manifest: AssetManifest
const originHits = new Map<string, number>()

async function startOrigin(port = 0): Promise<TestServer> {
  return startServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string
    originHits.set(path, (originHits.get(path) ?? 0) + 1)
    // Read the manifest per request: a deploy (a rebuilt manifest) is picked up at once.
    createOriginHandler({
      root: assets,
      manifest,
      cacheControl: { other: 'public, max-age=2, stale-if-error=300' },
      // conformance/<key>~<n>.txt also carries <key> (see the conformance test).
      surrogateKeys: (logical) => [
        'assets',
        logical,
        ...(/^conformance\/(.+)~\d+\.0123abcd\.txt$/.exec(logical)?.slice(1) ?? []),
      ],
    })(req, res)
  }, port)
}

const hitsAt = (url: string) => originHits.get(new URL(url).pathname) ?? 0

async function get(url: string) {
  const response = await fetch(url)
  return {
    status: response.status,
    cache: response.headers.get('x-cache'),
    stale: response.headers.get('x-cache-stale'),
    body: await response.text(),
  }
}

async function deploy(files: Record<string, string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) await writeFile(join(input, name), content)
  ;({ manifest } = await buildManifest({ inputDir: input, outputDir: assets }))
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'cdn-url-edge-'))
  input = join(root, 'public')
  assets = join(root, 'assets')
  await mkdir(join(input, 'css'), { recursive: true })
  await deploy({
    'app.js': 'console.log(1)',
    'css/site.css': 'body{}',
    'data.json': '{"v":1}',
    'logo.svg': '<svg/>',
  })
  // Not in the manifest (written straight into the served dir): the short-lived "other" class.
  await writeFile(join(assets, 'feed.json'), '{"v":1}')
  origin = await startOrigin()
  edge = await startVarnish({ backend: { host: '127.0.0.1', port: origin.port } })
})

afterAll(async () => {
  await edge?.dispose()
  await origin?.close()
  await rm(root, { recursive: true, force: true })
})

const cdn = () =>
  createCdn({ baseUrl: edge.url, originUrl: origin.url, manifest, onMissingAsset: 'passthrough' })

describe('through a real Varnish edge', () => {
  it('the second request for an asset is an edge hit: the origin is not asked again', async () => {
    const url = cdn().url('app.js')
    expect(url).toMatch(/\/app\.[0-9a-f]{8}\.js$/)
    const before = await edge.counters()
    const first = await get(url)
    const second = await get(url)
    expect([first.cache, second.cache]).toEqual(['MISS', 'HIT'])
    expect(second.body).toBe('console.log(1)')
    expect(hitsAt(url)).toBe(1)
    const after = await edge.counters()
    expect(after.hits - before.hits).toBe(1)
    expect(after.misses - before.misses).toBe(1)
  })

  it('a new version is a new URL: it misses once, and the old version stays cached', async () => {
    const oldUrl = cdn().url('app.js')
    await get(oldUrl)
    await deploy({ 'app.js': 'console.log(2)' })
    const newUrl = cdn().url('app.js')
    expect(newUrl).not.toBe(oldUrl)
    const fresh = await get(newUrl)
    expect(fresh).toMatchObject({ cache: 'MISS', body: 'console.log(2)' })
    expect((await get(newUrl)).cache).toBe('HIT')
    expect(hitsAt(newUrl)).toBe(1)
    expect((await get(oldUrl)).cache).toBe('HIT')
  })

  it('a purge by URL through the Varnish adapter makes the next request miss', async () => {
    const url = cdn().url('logo.svg')
    await get(url)
    expect((await get(url)).cache).toBe('HIT')
    const purger = createPurger({ adapter: varnishPurge({ url: edge.url }) })
    const result = await purger.purgeUrls([url])
    expect(result.requests).toBe(1)
    expect((await get(url)).cache).toBe('MISS')
    expect(hitsAt(url)).toBe(2)
  })

  it('a purge by surrogate key drops every version tagged with it, and nothing else', async () => {
    await deploy({ 'css/site.css': 'body{color:red}' })
    const site = cdn().url('css/site.css')
    const app = cdn().url('app.js')
    await get(site)
    await get(app)
    expect((await get(site)).cache).toBe('HIT')
    const purger = createPurger({ adapter: varnishPurge({ url: edge.url }) })
    await purger.purgeKeys(['css/site.css'])
    expect((await get(site)).cache).toBe('MISS')
    expect((await get(app)).cache).toBe('HIT')
    // The key "assets" tags every asset.
    await purger.purgeKeys(['assets'])
    expect((await get(app)).cache).toBe('MISS')
  })

  it('honours the origin’s TTLs: a short max-age expires, an immutable one stays', async () => {
    const data = cdn().url('feed.json')
    const app = cdn().url('app.js')
    await get(data)
    await get(app)
    expect((await get(data)).cache).toBe('HIT')
    await sleep(3_100) // feed.json: max-age=2 (Age counts whole seconds)
    const expired = await get(data)
    expect(expired.cache).toBe('MISS')
    expect((await get(app)).cache).toBe('HIT')
  })

  it('the Varnish adapter passes the purge-adapter conformance suite, and an adapter that purges nothing fails it', async () => {
    let n = 0
    // The origin tags every asset with its logical path: a fresh file per call, named after its key.
    const newAsset = async (key: string) => {
      // A hex fingerprint in the name: immutable, so nothing expires while the suite runs.
      const name = `conformance/${key}~${n++}.0123abcd.txt`
      await mkdir(join(assets, 'conformance'), { recursive: true })
      await writeFile(join(assets, name), name)
      return `${edge.url}/${name}`
    }
    const isCached = async (url: string) => (await get(url)).cache === 'HIT'
    await checkPurgeAdapter({ adapter: varnishPurge({ url: edge.url }), newAsset, isCached })
    const noop = { name: 'noop', maxBatch: { urls: 5, keys: 5 }, purgeUrls: async () => {} }
    await expect(checkPurgeAdapter({ adapter: noop, newAsset, isCached })).rejects.toMatchObject({
      code: 'E_CDN_PURGE_ADAPTER_NONCONFORMANT',
      context: { adapter: 'noop' },
    })
  })

  it('stale-if-error: while the origin is down the edge serves its last copy; back up, it refetches', async () => {
    const data = cdn().url('feed.json')
    await get(data)
    const port = origin.port
    await origin.close()
    await sleep(3_100) // past max-age=2: only stale-if-error=300 keeps the copy
    const whileDown = await get(data)
    expect(whileDown).toMatchObject({ status: 200, cache: 'HIT', stale: '1', body: '{"v":1}' })
    // Nothing the edge never saw can be served while the origin is down.
    expect((await get(`${edge.url}/never-seen.txt`)).status).toBe(503)
    origin = await startOrigin(port)
    const hitsBefore = hitsAt(data)
    const back = await get(data)
    expect(back).toMatchObject({ status: 200, cache: 'MISS', stale: null })
    expect(hitsAt(data)).toBe(hitsBefore + 1)
  })
})
