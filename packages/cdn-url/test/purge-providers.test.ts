import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { CdnClosedError, PurgeFailedError, PurgeUnsupportedError } from '../src/index.js'
import {
  cloudflarePurge,
  cloudfrontPurge,
  createPurger,
  fastlyPurge,
  type PurgeAdapter,
  signV4,
} from '../src/purge-entry.js'
import { startServer, type TestServer } from './helpers.js'

interface Seen {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
}

// A local stand-in for the provider: records every request and answers with the next scripted reply.
let provider: TestServer
let seen: Seen[] = []
let replies: { status: number; body: string; headers?: Record<string, string> }[] = []

beforeAll(async () => {
  provider = await startServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      })
      const reply = replies.shift() ?? { status: 200, body: '{"status":"ok","success":true}' }
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers })
      res.end(reply.body)
    })
  })
})

afterAll(async () => {
  await provider?.close()
})

beforeEach(() => {
  seen = []
  replies = []
})

describe('Fastly adapter (documented: POST /service/{id}/purge with Surrogate-Key; POST /purge/{url})', () => {
  it('purges up to 256 keys per request with the Fastly-Key header, soft when asked', async () => {
    const purger = createPurger({
      adapter: fastlyPurge({
        serviceId: 'SU1Z0isxPaozGVKXdv0eY',
        apiToken: 'tok',
        soft: true,
        endpoint: provider.url,
      }),
    })
    const keys = Array.from({ length: 300 }, (_, i) => `key-${i}`)
    const result = await purger.purgeKeys([...keys, 'key-1'])
    expect(result).toMatchObject({ items: 300, requests: 2 })
    expect(seen.map((s) => [s.method, s.url])).toEqual([
      ['POST', '/service/SU1Z0isxPaozGVKXdv0eY/purge'],
      ['POST', '/service/SU1Z0isxPaozGVKXdv0eY/purge'],
    ])
    expect(seen[0]?.headers['fastly-key']).toBe('tok')
    expect(seen[0]?.headers['fastly-soft-purge']).toBe('1')
    expect(seen[0]?.headers['surrogate-key']).toBe(keys.slice(0, 256).join(' '))
    expect(seen[1]?.headers['surrogate-key']).toBe(keys.slice(256).join(' '))
  })

  it('purges a URL as POST /purge/<host><path>', async () => {
    const purger = createPurger({
      adapter: fastlyPurge({ serviceId: 's', apiToken: 'tok', endpoint: provider.url }),
    })
    await purger.purgeUrls(['https://www.example.com/img/a%20b.png?v=2'])
    expect(seen).toHaveLength(1)
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/purge/www.example.com/img/a%20b.png?v=2' })
    expect(seen[0]?.headers['fastly-soft-purge']).toBeUndefined()
  })
})

describe('Cloudflare adapter (documented: POST /zones/{zone_id}/purge_cache, {"files"} or {"tags"})', () => {
  it('sends files and tags as JSON, 30 per request, with a Bearer token', async () => {
    const purger = createPurger({
      adapter: cloudflarePurge({
        zoneId: '023e105f4ecef8ad9ca31a8372d0c353',
        apiToken: 'cf-token',
        endpoint: provider.url,
      }),
    })
    const urls = Array.from({ length: 31 }, (_, i) => `https://example.com/a${i}.js`)
    await purger.purgeUrls(urls)
    await purger.purgeKeys(['product-1', 'assets'])
    expect(seen.map((s) => s.url)).toEqual(
      Array(3).fill('/zones/023e105f4ecef8ad9ca31a8372d0c353/purge_cache'),
    )
    expect(seen[0]?.headers.authorization).toBe('Bearer cf-token')
    expect(seen[0]?.headers['content-type']).toBe('application/json')
    expect(JSON.parse(seen[0]?.body as string)).toEqual({ files: urls.slice(0, 30) })
    expect(JSON.parse(seen[1]?.body as string)).toEqual({ files: urls.slice(30) })
    expect(JSON.parse(seen[2]?.body as string)).toEqual({ tags: ['product-1', 'assets'] })
  })

  it('treats a 200 with success: false as a failure, and does not retry it', async () => {
    replies = [
      {
        status: 200,
        body: '{"success":false,"errors":[{"code":1012,"message":"Request must contain one of"}]}',
      },
    ]
    const purger = createPurger({
      adapter: cloudflarePurge({ zoneId: 'z', apiToken: 't', endpoint: provider.url }),
      baseDelayMs: 1,
    })
    await expect(purger.purgeKeys(['x'])).rejects.toMatchObject({
      code: 'E_CDN_PURGE_FAILED',
      context: { items: ['x'] },
    })
    expect(seen).toHaveLength(1)
  })
})

describe('CloudFront adapter (documented: POST /2020-05-31/distribution/{Id}/invalidation, XML, SigV4)', () => {
  const credentials = {
    accessKeyId: 'AKIDEXAMPLE',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  }

  it('sends an InvalidationBatch of the URLs’ paths, signed with SigV4 that verifies on the received request', async () => {
    replies = [{ status: 201, body: '<Invalidation><Id>I2J0I21PCUYOIK</Id></Invalidation>' }]
    const purger = createPurger({
      adapter: cloudfrontPurge({ distributionId: 'EDFDVBD6EXAMPLE', credentials, endpoint: provider.url }),
    })
    await purger.purgeUrls([
      'https://d111111abcdef8.cloudfront.net/images/a%20b.jpg?x=1',
      'https://d111111abcdef8.cloudfront.net/app.js',
    ])
    const request = seen[0] as Seen
    expect(request.method).toBe('POST')
    expect(request.url).toBe('/2020-05-31/distribution/EDFDVBD6EXAMPLE/invalidation')
    expect(request.body).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<InvalidationBatch xmlns="http:\/\/cloudfront.amazonaws.com\/doc\/2020-05-31\/"><Paths><Quantity>2<\/Quantity><Items><Path>\/images\/a%20b.jpg<\/Path><Path>\/app.js<\/Path><\/Items><\/Paths><CallerReference>cdn-url-[^<]+<\/CallerReference><\/InvalidationBatch>$/,
    )
    // Recompute the signature from what arrived: host, date and body as the server saw them.
    const amzDate = request.headers['x-amz-date'] as string
    const date = new Date(
      `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
    )
    const expected = signV4(
      {
        method: 'POST',
        url: `http://${request.headers.host}${request.url}`,
        headers: { 'content-type': 'application/xml' },
        body: request.body,
        region: 'us-east-1',
        service: 'cloudfront',
        date,
      },
      credentials,
    )
    expect(request.headers.authorization).toBe(expected.authorization)
    expect(request.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/us-east-1\/cloudfront\/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=[0-9a-f]{64}$/,
    )
  })

  it('cannot purge by key', async () => {
    const purger = createPurger({
      adapter: cloudfrontPurge({ distributionId: 'E1', credentials, endpoint: provider.url }),
    })
    await expect(purger.purgeKeys(['a'])).rejects.toBeInstanceOf(PurgeUnsupportedError)
  })

  it('SigV4 matches the worked example in AWS’s documentation', () => {
    const headers = signV4(
      {
        method: 'GET',
        url: 'https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08',
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
        body: '',
        region: 'us-east-1',
        service: 'iam',
        date: new Date('2015-08-30T12:36:00Z'),
      },
      credentials,
    )
    expect(headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
    )
  })
})

describe('createPurger: retries, backoff, dry run, close', () => {
  const adapter = () => fastlyPurge({ serviceId: 's', apiToken: 't', endpoint: provider.url })

  it('retries 5xx and 429 (honouring Retry-After) until it succeeds', async () => {
    replies = [
      { status: 503, body: 'busy' },
      { status: 429, body: 'slow down', headers: { 'retry-after': '0' } },
    ]
    const result = await createPurger({ adapter: adapter(), baseDelayMs: 1 }).purgeKeys(['k'])
    expect(result.requests).toBe(3)
    expect(seen).toHaveLength(3)
  })

  it('a Retry-After longer than maxDelayMs fails the batch at once, naming the wait, instead of stalling for it', async () => {
    replies = [{ status: 503, body: 'busy', headers: { 'retry-after': '3600' } }]
    const error = await createPurger({ adapter: adapter(), baseDelayMs: 1 })
      .purgeKeys(['k'])
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PurgeFailedError)
    expect(error).toMatchObject({ context: { items: ['k'], retryAfterMs: 3_600_000 } })
    expect(seen).toHaveLength(1)
    // An HTTP-date Retry-After an hour ahead is the same wait.
    seen = []
    replies = [
      {
        status: 429,
        body: 'slow',
        headers: { 'retry-after': new Date(Date.now() + 3_600_000).toUTCString() },
      },
    ]
    const dated = await createPurger({ adapter: adapter(), baseDelayMs: 1 })
      .purgeKeys(['k'])
      .catch((e: unknown) => e)
    expect(dated).toBeInstanceOf(PurgeFailedError)
    expect((dated as PurgeFailedError).context.retryAfterMs).toBeGreaterThan(3_500_000)
    expect(seen).toHaveLength(1)
  })

  it('refuses delays and timeouts a Node timer cannot hold, with the option named', () => {
    for (const option of ['baseDelayMs', 'maxDelayMs', 'requestTimeoutMs'] as const) {
      for (const value of [Number.POSITIVE_INFINITY, 2 ** 31, -1]) {
        expect(() => createPurger({ adapter: adapter(), [option]: value })).toThrow(
          expect.objectContaining({ code: 'E_CDN_INVALID_OPTIONS', context: { option } }),
        )
      }
    }
  })

  it('gives up after `retries`, and never retries a 4xx', async () => {
    replies = Array(5).fill({ status: 500, body: 'down' })
    const failing = createPurger({ adapter: adapter(), retries: 2, baseDelayMs: 1 })
    const error = await failing.purgeKeys(['k']).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PurgeFailedError)
    expect(seen).toHaveLength(3)
    seen = []
    replies = [{ status: 403, body: 'bad token' }]
    await expect(failing.purgeKeys(['k'])).rejects.toThrow(/HTTP 403: bad token/)
    expect(seen).toHaveLength(1)
  })

  it('retries a provider that refuses connections, then fails with the batch named', async () => {
    const dead = await startServer(() => {})
    const port = dead.port
    await dead.close()
    const purger = createPurger({
      adapter: fastlyPurge({ serviceId: 's', apiToken: 't', endpoint: `http://127.0.0.1:${port}` }),
      retries: 2,
      baseDelayMs: 1,
    })
    await expect(purger.purgeUrls(['https://x.example/a.js'])).rejects.toMatchObject({
      code: 'E_CDN_PURGE_FAILED',
      context: { provider: 'fastly', kind: 'urls', items: ['https://x.example/a.js'] },
    })
  })

  it('dry run: returns the batches it would send and sends nothing', async () => {
    const logged: unknown[] = []
    const purger = createPurger({
      adapter: cloudflarePurge({ zoneId: 'z', apiToken: 't', endpoint: provider.url }),
      dryRun: true,
      logger: { info: (o) => logged.push(o), warn() {}, error() {} },
    })
    const result = await purger.purgeKeys(Array.from({ length: 45 }, (_, i) => `k${i}`))
    expect(result).toMatchObject({ dryRun: true, requests: 0, items: 45 })
    expect(result.batches.map((b) => b.length)).toEqual([30, 15])
    expect(seen).toHaveLength(0)
    expect(logged).toHaveLength(1)
  })

  it('close() aborts a retry in progress and refuses later calls', async () => {
    replies = Array(5).fill({ status: 503, body: 'down' })
    const purger = createPurger({ adapter: adapter(), retries: 4, baseDelayMs: 60_000, maxDelayMs: 60_000 })
    const pending = purger.purgeKeys(['k'])
    await new Promise((resolve) => setTimeout(resolve, 50))
    await purger.close()
    await expect(pending).rejects.toBeInstanceOf(PurgeFailedError)
    await expect(purger.purgeKeys(['k'])).rejects.toBeInstanceOf(CdnClosedError)
  })

  it('a custom adapter without purgeKeys is refused with PurgeUnsupportedError', async () => {
    const urlsOnly: PurgeAdapter = {
      name: 'mine',
      maxBatch: { urls: 10, keys: 0 },
      purgeUrls: async () => {},
    }
    await expect(createPurger({ adapter: urlsOnly }).purgeKeys(['a'])).rejects.toBeInstanceOf(
      PurgeUnsupportedError,
    )
  })
})
