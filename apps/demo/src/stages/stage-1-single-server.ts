import { profileMix } from '../load/mixes.js'
import { steadyLoad } from './phases.js'
import type { Stage } from './stage.js'

/** One Node process and Postgres on one box, talking over the Unix socket. */
export const singleServer: Stage = {
  number: 1,
  title: 'single server',
  whatAppears: 'one Node process and one Postgres on the same machine (Unix socket)',
  topology: () => ({
    replicas: 0,
    webServers: 1,
    loadBalancer: false,
    redis: false,
    edge: false,
    unixSocket: true,
    app: {},
  }),
  async run(topology, context) {
    const { load, measures } = await steadyLoad(topology, context, () => profileMix(context.users))
    return {
      load,
      measures: { ...measures, staleReads: load.counts.staleReads ?? 0 },
      drill: undefined,
      notes: [
        `Baseline: ${load.throughputRps} requests/s, p99 ${load.latencyMs.p99} ms, every query on the one Postgres.`,
      ],
    }
  },
}
