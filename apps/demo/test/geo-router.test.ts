import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { waitFor } from '@scale/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GeoRouter } from '../src/datacenters/geo-router.js'

/** A stand-in for a region's load balancer: answers every request with its region's name. */
async function region(name: string): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume()
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ region: name }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

const portOf = (server: Server) => (server.address() as AddressInfo).port
let a: Server
let b: Server
let geo: GeoRouter

beforeAll(async () => {
  a = await region('a')
  b = await region('b')
  geo = await GeoRouter.start([
    { name: 'a', port: portOf(a) },
    { name: 'b', port: portOf(b) },
  ])
})

afterAll(async () => {
  await geo?.stop()
  a?.close()
  b?.close()
})

async function ask(fromRegion?: string): Promise<{ status: number; served: string | null; body: string }> {
  const response = await fetch(`${geo.url}/users/1`, {
    headers: fromRegion ? { 'x-region': fromRegion } : {},
  })
  return {
    status: response.status,
    served: response.headers.get('x-served-region'),
    body: await response.text(),
  }
}

describe('the stage 8 geo router', () => {
  it('sends each client to the region its header names, and clients naming none to the first', async () => {
    await waitFor('both regions up', async () => (await ask('b')).served === 'b')
    expect(await ask('a')).toMatchObject({ status: 200, served: 'a', body: '{"region":"a"}' })
    expect(await ask('b')).toMatchObject({ status: 200, served: 'b', body: '{"region":"b"}' })
    expect((await ask()).served).toBe('a')
  })

  it("sends a failed region's clients to the other region", async () => {
    b.closeAllConnections()
    await new Promise((resolve) => b.close(resolve))
    await waitFor('region b taken out', async () => (await ask('b')).served === 'a', { timeoutMs: 10_000 })
    const answers = await Promise.all(Array.from({ length: 20 }, () => ask('b')))
    expect(answers.map((x) => `${x.status} ${x.body}`)).toEqual(Array(20).fill('200 {"region":"a"}'))
  })
})

describe('the stage 8 split', () => {
  it('is half and half unless DEMO_REGION_A_SHARE says otherwise, and refuses a share outside (0, 1)', async () => {
    const { regionAShare } = await import('../src/stages/stage-8-data-centers.js')
    expect(regionAShare(undefined)).toBe(0.5)
    expect(regionAShare('0.7')).toBe(0.7)
    for (const bad of ['0', '1', '1.5', 'half', '-0.2'])
      expect(() => regionAShare(bad), bad).toThrow(/DEMO_REGION_A_SHARE must be a number between 0 and 1/)
  })
})
