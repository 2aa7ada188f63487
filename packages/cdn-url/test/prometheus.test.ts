import * as promClient from 'prom-client'
import { describe, expect, it } from 'vitest'
import { createCdn, promClientMetrics } from '../src/index.js'
import { createOrigin } from '../src/origin-entry.js'

describe('promClientMetrics', () => {
  it('counts URLs, verifications and origin responses as prom-client counters with their labels', async () => {
    const registry = new promClient.Registry()
    const metrics = promClientMetrics({ promClient, registers: [registry] })
    const cdn = createCdn({
      baseUrl: 'https://cdn.example.com',
      signing: { keys: [{ id: 'k1', secret: 'a-secret-of-at-least-32-bytes-0123456789' }] },
      metrics,
    })
    cdn.url('a.js')
    cdn.url('a.js')
    const signed = cdn.url('b.js', { sign: true })
    cdn.verify(signed.slice('https://cdn.example.com'.length))
    expect(() => cdn.verify('/b.js?exp=1&kid=k1&sig=x')).toThrow()
    const origin = createOrigin({ root: '/nonexistent-root', metrics })
    await origin.respond({ method: 'GET', url: '/%2e%2e/x', headers: {} })

    const text = await registry.metrics()
    expect(text).toContain('scale_cdn_urls_total 3')
    expect(text).toContain('scale_cdn_verify_total{result="ok"} 1')
    expect(text).toContain('scale_cdn_verify_total{result="E_CDN_SIGNATURE_INVALID"} 1')
    expect(text).toContain('scale_cdn_origin_responses_total{status="400",class="none"} 1')
    expect(text).toContain('# HELP scale_cdn_urls_total Asset URLs built by cdn.url()')
  })

  it('feeds observe() into a histogram, and takes a prefix', async () => {
    const registry = new promClient.Registry()
    const metrics = promClientMetrics({ promClient, registers: [registry], prefix: 'app_' })
    metrics.observe?.('cdn_probe_seconds', 0.2, { edge: 'a' })
    expect(await registry.metrics()).toContain('app_cdn_probe_seconds_count{edge="a"} 1')
  })
})
