import type { Mix } from '../load/mixes.js'
import { type LoadResult, runLoad } from '../load/run-load.js'
import type { Topology } from '../topology/topology.js'
import { databaseMeasures, delta, snapshot, type TierDelta } from './measure.js'
import type { DrillResult, StageContext } from './stage.js'

/** A short unmeasured run first (JIT, connection pools, Postgres buffers), then the measured one. */
export async function steadyLoad(
  topology: Topology,
  context: StageContext,
  mix: () => Mix,
  url = topology.entryUrl,
): Promise<{ load: LoadResult; tier: TierDelta; measures: Record<string, number> }> {
  const { progress, durations, connections } = context
  progress.step('warm-up')
  await runLoad({ url, durationMs: durations.warmupMs, connections, mix: mix() })
  progress.step(`steady load, ${durations.steadyMs / 1000} s`)
  const before = await snapshot(topology)
  const load = await runLoad({
    url,
    durationMs: durations.steadyMs,
    connections,
    mix: mix(),
    onProgress: (n) => progress.requests(n),
  })
  const tier = delta(before, await snapshot(topology))
  return { load, tier, measures: databaseMeasures(tier, load.requests) }
}

export interface Fault {
  /** Fraction of the drill phase at which it happens. */
  at: number
  what: string
  run: () => Promise<void>
}

/** Load with faults injected mid-way; errors and recovery time are counted on the load side. */
export async function drillLoad(
  topology: Topology,
  context: StageContext,
  name: string,
  mix: Mix,
  faults: Fault[],
  url = topology.entryUrl,
): Promise<DrillResult> {
  const { progress, durations, connections } = context
  progress.step(`drill: ${name}`)
  const events: DrillResult['events'] = []
  const start = Date.now()
  const load = await runLoad({
    url,
    durationMs: durations.drillMs,
    connections,
    mix,
    onProgress: (n) => progress.requests(n),
    at: faults.map((fault) => ({
      atMs: Math.round(fault.at * durations.drillMs),
      run: async () => {
        events.push({ atMs: Date.now() - start, what: fault.what })
        progress.note(`  ${fault.what}`)
        await fault.run()
      },
    })),
  })
  const errors = load.connectionErrors + load.serverErrors
  const firstFault = events[0]?.atMs ?? 0
  const lastFailure = load.failureTimes.at(-1)
  return {
    name,
    events,
    errors,
    recoveryMs: lastFailure === undefined ? 0 : Math.max(0, lastFailure - firstFault),
    load,
    timeline: load.timeline,
    measures: {},
  }
}
