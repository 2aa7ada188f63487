import * as promClient from 'prom-client'
import { describe, expect, it } from 'vitest'
import { promClientMetrics } from '../src/index.js'

describe('promClientMetrics', () => {
  it('turns the hook calls into prom-client counters and histograms', async () => {
    const registry = new promClient.Registry()
    const hook = promClientMetrics({ promClient, registers: [registry] })
    hook.increment?.('sharding_route_total', { shard: 's1' })
    hook.increment?.('sharding_route_total', { shard: 's1' })
    hook.increment?.('sharding_route_total', { shard: 's2' }, 3)
    hook.observe?.('sharding_move_pause_ms', 42)
    const text = await registry.metrics()
    expect(text).toContain('scale_sharding_route_total{shard="s1"} 2')
    expect(text).toContain('scale_sharding_route_total{shard="s2"} 3')
    expect(text).toContain('scale_sharding_move_pause_ms_bucket{le="50"} 1')
    expect(text).toContain('scale_sharding_move_pause_ms_count 1')
  })
})
