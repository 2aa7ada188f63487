import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Topology } from '../src/topology/topology.js'
import { launchChromium } from './chromium.js'

let topology: Topology
let browser: Browser

beforeAll(async () => {
  // The stage 9 shape, logins on: edge → HAProxy → web server, Redis sessions, one photo worker.
  topology = await Topology.start({
    replicas: 1,
    webServers: 1,
    loadBalancer: true,
    redis: true,
    edge: true,
    unixSocket: false,
    app: { cache: true, sessions: true },
    workers: 1,
    users: 50,
    seed: 5,
    logDir: mkdtempSync(join(tmpdir(), 'demo-browser-')),
  })
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  await topology?.stop()
})

/** Every form control of the page has a label a screen reader announces. */
async function unlabelled(tab: Page): Promise<string[]> {
  return tab.$$eval('input, select, textarea', (controls) =>
    controls.filter((c) => (c as HTMLInputElement).labels?.length === 0).map((c) => c.outerHTML),
  )
}

describe('the app in a browser', () => {
  it('signs up, logs in, uploads a photo and shows its processed thumbnail from the edge', async () => {
    const tab = await browser.newPage()
    // Pages on `localhost`, images on the edge at 127.0.0.1: the session cookie stays with the
    // pages (a cookie-less asset host, as CDNs are set up).
    const origin = topology.originUrl.replace('127.0.0.1', 'localhost')
    await tab.goto(`${origin}/signup`)
    expect(await unlabelled(tab)).toEqual([])
    await tab.getByLabel('Username').fill('ada')
    await tab.getByLabel('Password').fill('correct horse battery')
    await tab.getByLabel('First name').fill('Ada')
    await tab.getByLabel('Last name').fill('Lovelace')
    await tab.getByRole('button', { name: 'Sign up' }).click()
    await tab.waitForURL(/\/login\?signed-up=1$/)
    expect(await tab.getByRole('status').textContent()).toContain('Account created')

    expect(await unlabelled(tab)).toEqual([])
    await tab.getByLabel('Username').fill('ada')
    await tab.getByLabel('Password').fill('correct horse battery')
    await tab.getByRole('button', { name: 'Log in' }).click()
    await tab.waitForURL(/\/profile$/)
    expect(await tab.getByRole('heading', { level: 1 }).textContent()).toBe('Ada Lovelace')

    expect(await unlabelled(tab)).toEqual([])
    const png = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#3366cc' } })
      .png()
      .toBuffer()
    await tab.getByLabel(/^Photo/).setInputFiles({ name: 'sea.png', mimeType: 'image/png', buffer: png })
    await tab.getByLabel('Caption').fill('The sea')
    await tab.getByRole('button', { name: 'Upload' }).click()
    await tab.waitForURL(/\/gallery$/)

    // The worker makes the thumbnail in the background: the gallery shows it once it is there.
    await expect
      .poll(
        async () => {
          await tab.reload()
          return tab.getByRole('img', { name: 'The sea' }).count()
        },
        { timeout: 60_000, interval: 500 },
      )
      .toBe(1)
    const image = tab.getByRole('img', { name: 'The sea' })
    const src = (await image.getAttribute('src')) ?? ''
    expect(src.startsWith(`${topology.edge?.url}/thumbnails/`)).toBe(true)
    expect(await image.evaluate((img: HTMLImageElement) => [img.complete, img.naturalWidth])).toEqual([
      true,
      160,
    ])

    // The browser's own reload, through the edge. The thumbnail is `immutable`, so a plain reload
    // takes it from the browser's memory cache and shows the headers of the first fetch (the MISS
    // that filled the edge): no request reaches the edge at all. With the browser's cache off (as
    // a new visitor, or DevTools' "Disable cache"), the reload's request goes to the edge and is a HIT.
    const cdp = await tab.context().newCDPSession(tab)
    await cdp.send('Network.enable') // setCacheDisabled is ignored until the domain is enabled
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true })
    const [reloaded] = await Promise.all([
      tab.waitForResponse((response) => response.url() === src),
      tab.reload(),
    ])
    const seen = `X-Varnish ${reloaded.headers()['x-varnish']}, Age ${reloaded.headers().age}`
    expect(
      [reloaded.status(), reloaded.headers()['content-type'], reloaded.headers()['x-cache']],
      seen,
    ).toEqual([200, 'image/jpeg', 'HIT'])
    expect((await sharp(await reloaded.body()).metadata()).width).toBe(160)
    await tab.close()
  })

  it('refuses a file that is not an image, and the pages without login send you to log in', async () => {
    const tab = await browser.newPage()
    await tab.goto(`${topology.originUrl}/gallery`)
    expect(new URL(tab.url()).pathname).toBe('/login')
    await tab.getByLabel('Username').fill('ada')
    await tab.getByLabel('Password').fill('wrong password')
    await tab.getByRole('button', { name: 'Log in' }).click()
    expect(await tab.getByRole('alert').textContent()).toBe('wrong username or password')
    await tab.getByLabel('Username').fill('ada')
    await tab.getByLabel('Password').fill('correct horse battery')
    await tab.getByRole('button', { name: 'Log in' }).click()
    await tab.waitForURL(/\/profile$/)
    await tab
      .getByLabel(/^Photo/)
      .setInputFiles({ name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not an image') })
    await tab.getByLabel('Caption').fill('Notes')
    await tab.getByRole('button', { name: 'Upload' }).click()
    expect(await tab.getByRole('alert').textContent()).toBe('choose a JPEG, PNG or WebP image')
    await tab.close()
  })
})
