import * as promClient from 'prom-client'
import { describe, expect, it } from 'vitest'
import { promClientHook } from '../src/index.js'

describe('promClientHook', () => {
  it('creates counters lazily with declared help and labels; missing labels are empty, extra ones dropped', async () => {
    const registry = new promClient.Registry()
    const hook = promClientHook(
      { promClient, registers: [registry] },
      { counters: { x_total: { help: 'Things done', labelNames: ['queue', 'result'] } } },
    )
    expect(await registry.getMetricsAsJSON()).toEqual([])
    hook.increment?.('x_total', { queue: 'q', extra: 'dropped' })
    hook.increment?.('x_total', { queue: 'q', result: 'ok' }, 2)
    const lines = (await registry.metrics()).split('\n')
    expect(lines).toEqual(
      expect.arrayContaining([
        '# HELP scale_x_total Things done',
        'scale_x_total{queue="q",result=""} 1',
        'scale_x_total{queue="q",result="ok"} 2',
      ]),
    )
  })

  it('an undeclared metric takes the labels it first arrives with, its name as help, and the prefix', async () => {
    const registry = new promClient.Registry()
    const hook = promClientHook({ promClient, registers: [registry], prefix: 'app_' })
    hook.increment?.('new_total', { shard: 's1' })
    hook.observe?.('new_ms', 7, { shard: 's1' })
    const lines = (await registry.metrics()).split('\n')
    expect(lines).toEqual(
      expect.arrayContaining([
        '# HELP app_new_total new_total',
        'app_new_total{shard="s1"} 1',
        'app_new_ms_count{shard="s1"} 1',
        'app_new_ms_sum{shard="s1"} 7',
      ]),
    )
  })

  it('histograms use declared buckets, else the catalog buckets', async () => {
    const registry = new promClient.Registry()
    const hook = promClientHook(
      { promClient, registers: [registry] },
      { buckets: [10, 100], histograms: { own_ms: { help: 'Own', buckets: [1] } } },
    )
    hook.observe?.('own_ms', 0.5)
    hook.observe?.('other_ms', 50)
    const text = await registry.metrics()
    expect(text).toContain('scale_own_ms_bucket{le="1"} 1')
    expect(text).not.toContain('scale_own_ms_bucket{le="10"}')
    expect(text).toContain('scale_other_ms_bucket{le="10"} 0')
    expect(text).toContain('scale_other_ms_bucket{le="100"} 1')
  })

  it('declaredOnly creates every declared metric at once, at zero, and ignores other names', async () => {
    const registry = new promClient.Registry()
    const hook = promClientHook(
      { promClient, registers: [registry] },
      {
        declaredOnly: true,
        counters: { a_total: { help: 'A', labelNames: [] } },
        histograms: { b_ms: { help: 'B', labelNames: ['role'] } },
      },
    )
    const names = (await registry.getMetricsAsJSON()).map((metric) => metric.name)
    expect(names).toEqual(['scale_a_total', 'scale_b_ms'])
    hook.increment?.('unknown_total')
    hook.observe?.('unknown_ms', 1)
    hook.increment?.('a_total')
    expect((await registry.getMetricsAsJSON()).map((metric) => metric.name)).toEqual(names)
    expect(await registry.metrics()).toContain('scale_a_total 1')
  })
})
