import { profileMix } from '../load/mixes.js'
import { drillLoad, steadyLoad } from './phases.js'
import type { Stage } from './stage.js'

/** @scale/read-replica: reads to 2 streaming replicas, read-your-writes; a replica is killed. */
export const replication: Stage = {
  number: 4,
  title: 'replication',
  whatAppears: 'a primary and 2 streaming replicas via @scale/read-replica',
  topology: () => ({
    replicas: 2,
    webServers: 3,
    loadBalancer: true,
    redis: false,
    edge: false,
    unixSocket: false,
    app: {},
  }),
  async run(topology, context) {
    const { load, measures } = await steadyLoad(topology, context, () => profileMix(context.users))
    const victim = topology.database.replicas[0]!
    const drill = await drillLoad(topology, context, `kill ${victim.name}`, profileMix(context.users), [
      { at: 1 / 3, what: `postgres ${victim.name} killed (SIGKILL)`, run: () => victim.kill() },
    ])
    drill.measures = {
      staleReads: drill.load.counts.staleReads ?? 0,
      readBacks: drill.load.counts.readBacks ?? 0,
    }
    const staleReads = load.counts.staleReads ?? 0
    return {
      load,
      measures: { ...measures, staleReads, readBacks: load.counts.readBacks ?? 0 },
      drill,
      notes: [
        `${Math.round(measures.readsOffPrimaryShare! * 100)}% of reads went to the replicas; ` +
          `${staleReads} stale reads in ${load.counts.readBacks ?? 0} read-backs of a user's own write.`,
        `Killing ${victim.name} cost ${drill.errors} failed requests (reads in flight are retried elsewhere).`,
      ],
    }
  },
}
