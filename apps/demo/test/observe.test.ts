import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { logInUsers } from '../src/load/login.js'
import { loggedInMix } from '../src/load/mixes.js'
import { runLoad } from '../src/load/run-load.js'
import { startDashboard } from '../src/observe/dashboard.js'
import { LiveMetrics } from '../src/observe/live-metrics.js'
import { logFilesIn, searchLogs } from '../src/observe/log-search.js'
import { parsePrometheusText, sumOf } from '../src/observe/prometheus-text.js'
import { Topology } from '../src/topology/topology.js'
import { launchChromium } from './chromium.js'

const USERS = 50
let topology: Topology
let browser: Browser

beforeAll(async () => {
  topology = await Topology.start({
    replicas: 0,
    webServers: 2,
    loadBalancer: true,
    redis: true,
    edge: false,
    unixSocket: false,
    app: { cache: true, sessions: true },
    workers: 1,
    requestIds: true,
    users: USERS,
    seed: 9,
    logDir: mkdtempSync(join(tmpdir(), 'demo-observe-')),
  })
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  await topology?.stop()
})

describe('Prometheus text', () => {
  it('reads samples with labels and sums them by name and label', () => {
    const samples = parsePrometheusText(
      '# HELP x y\nhttp_requests_total{method="GET",status="200"} 7\nhttp_requests_total{method="GET",status="503"} 2\nup 1\nbad line\n',
    )
    expect(sumOf(samples, 'http_requests_total')).toBe(9)
    expect(sumOf(samples, 'http_requests_total', (l) => Number(l.status) >= 500)).toBe(2)
    expect(sumOf(samples, 'up')).toBe(1)
  })
})

describe('logs and metrics across processes', () => {
  it("finds one upload's request ID in the load balancer's, a web server's and the worker's logs", async () => {
    const [user] = await logInUsers(topology.originUrl, 1, USERS)
    const response = await fetch(`${topology.originUrl}/photos`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: user!.cookie },
      body: JSON.stringify({ userId: user!.userId, caption: 'traced', hue: 10 }),
    })
    expect(response.status).toBe(201)
    const requestId = response.headers.get('x-request-id') ?? ''
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/)
    const files = [join(topology.loadBalancer!.dir, 'haproxy.log'), ...logFilesIn(topology.spec.logDir)]
    await expect
      .poll(() => [...new Set(searchLogs(files, requestId).map((t) => t.process))].sort(), {
        timeout: 30_000,
      })
      .toEqual(expect.arrayContaining(['haproxy', 'worker-1']))
    const processes = searchLogs(files, requestId).map((t) => t.process)
    expect(processes.filter((p) => p.startsWith('web-'))).toHaveLength(1)
  })

  it('the dashboard shows non-zero live requests and logged-in users while load runs', async () => {
    const live = new LiveMetrics(topology)
    live.start(500)
    const dashboard = await startDashboard(live)
    try {
      const users = await logInUsers(topology.originUrl, 8, USERS)
      const load = runLoad({
        url: topology.originUrl,
        durationMs: 6_000,
        connections: 4,
        mix: loggedInMix(users, USERS),
      })
      const tab = await browser.newPage()
      await tab.goto(dashboard.url)
      const figure = async (name: string) =>
        Number((await tab.locator(`[data-figure="${name}"]`).textContent({ timeout: 10_000 })) ?? 0)
      await expect.poll(() => figure('requestsPerSecond'), { timeout: 20_000 }).toBeGreaterThan(0)
      expect(await figure('loggedInUsers')).toBeGreaterThan(0)
      expect(await figure('scraped')).toBe(3) // 2 web servers and the worker
      await tab.close()
      await load
    } finally {
      await dashboard.close()
      await live.stop()
    }
  })
})
