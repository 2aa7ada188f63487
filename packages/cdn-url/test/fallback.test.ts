import { startVarnish, type VarnishServer, waitFor } from '@scale/testkit'
import { chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCdn, fallbackScript } from '../src/index.js'
import { startServer, type TestServer } from './helpers.js'

let origin: TestServer
let edge: VarnishServer
const originRequests: string[] = []

beforeAll(async () => {
  origin = await startServer((req, res) => {
    originRequests.push(req.url ?? '')
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/app.js') {
      res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'public, max-age=60' })
      res.end('window.appRan = (window.appRan || 0) + 1')
    } else if (path === '/site.css') {
      res.writeHead(200, { 'content-type': 'text/css', 'cache-control': 'public, max-age=60' })
      res.end('body { background-color: rgb(1, 2, 3) }')
    } else if (path === '/logo.svg') {
      res.writeHead(200, { 'content-type': 'image/svg+xml', 'cache-control': 'public, max-age=60' })
      res.end('<svg xmlns="http://www.w3.org/2000/svg" width="7" height="5"></svg>')
    } else {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' })
      res.end('ok')
    }
  })
  edge = await startVarnish({ backend: { host: '127.0.0.1', port: origin.port } })
})

afterAll(async () => {
  await edge?.dispose()
  await origin?.close()
})

describe('health switch', () => {
  it('sends URLs to the origin while the edge is down and back when it returns, with hysteresis', async () => {
    const warnings: string[] = []
    const switches: string[] = []
    const cdn = createCdn({
      baseUrl: edge.url,
      originUrl: origin.url,
      health: {
        url: `${edge.url}/health`,
        intervalMs: 0,
        failuresToSwitch: 2,
        successesToRecover: 2,
        timeoutMs: 2_000,
      },
      logger: { info() {}, warn: (_o, message) => warnings.push(message), error() {} },
      metrics: {
        increment: (name, labels) =>
          name === 'cdn_fallback_switches_total' && switches.push(labels?.to ?? ''),
      },
    })
    expect(await cdn.checkHealth()).toBe('edge')
    expect(cdn.url('app.js')).toBe(`${edge.url}/app.js`)

    await edge.kill()
    expect(await cdn.checkHealth()).toBe('edge') // one failure is not enough
    expect(cdn.url('app.js')).toBe(`${edge.url}/app.js`)
    expect(await cdn.checkHealth()).toBe('origin')
    const fallbackUrl = cdn.url('app.js')
    expect(fallbackUrl).toBe(`${origin.url}/app.js`)
    expect((await fetch(fallbackUrl)).status).toBe(200) // the page keeps working

    await edge.start()
    expect(await cdn.checkHealth()).toBe('origin') // one success is not enough either
    expect(await cdn.checkHealth()).toBe('edge')
    expect(cdn.url('app.js')).toBe(`${edge.url}/app.js`)
    expect(switches).toEqual(['origin', 'edge'])
    expect(warnings).toHaveLength(1)
    await cdn.close()
  })

  it('a flapping edge (down, up, down, up) never moves traffic', async () => {
    let up = true
    const cdn = createCdn({
      baseUrl: edge.url,
      originUrl: origin.url,
      health: { check: async () => up, intervalMs: 0, failuresToSwitch: 2, successesToRecover: 2 },
    })
    for (let i = 0; i < 6; i++) {
      up = !up
      expect(await cdn.checkHealth()).toBe('edge')
    }
    await cdn.close()
  })

  it('probes on its timer until close(), then never again', async () => {
    let probes = 0
    const cdn = createCdn({
      baseUrl: edge.url,
      originUrl: origin.url,
      health: {
        check: async () => {
          probes++
          return false
        },
        intervalMs: 20,
        failuresToSwitch: 3,
      },
    })
    await waitFor('three timed probes and a switch', () => cdn.servingFrom === 'origin', {
      timeoutMs: 30_000,
    })
    await cdn.close()
    const after = probes
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(probes).toBe(after)
    expect(() => cdn.url('a.js')).toThrow(/after close/)
  })
})

describe('client-side fallback script in a real browser', () => {
  it('loads script, stylesheet and image from the second host when the first refuses', async () => {
    // A host that refuses connections: a port that was just closed.
    const dead = await startServer(() => {})
    const refused = dead.url
    await dead.close()
    const script = fallbackScript([refused, origin.url])
    expect(script.length).toBeLessThan(600)
    const page = await startServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end(`<!doctype html><html><head><script>${script}</script>
        <link rel="stylesheet" href="${refused}/site.css">
        <script src="${refused}/app.js"></script></head>
        <body><img id="logo" src="${refused}/logo.svg"></body></html>`)
    })
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu'],
    })
    try {
      const tab = await browser.newPage()
      originRequests.length = 0
      await tab.goto(page.url)
      // A string: it runs in the page, where the DOM globals exist.
      await tab.waitForFunction(
        `window.appRan === 1 && document.getElementById('logo').naturalWidth === 7 &&
         getComputedStyle(document.body).backgroundColor === 'rgb(1, 2, 3)'`,
        undefined,
        { timeout: 30_000 },
      )
      expect(originRequests.sort()).toEqual(['/app.js', '/logo.svg', '/site.css'])
    } finally {
      await browser.close()
      await page.close()
    }
  })
})
