import { profileMix } from '../load/mixes.js'
import { steadyLoad } from './phases.js'
import type { Stage } from './stage.js'

/**
 * The database as its own server: the app reaches it over TCP. On one machine this changes only
 * the transport (loopback TCP instead of a Unix socket); the CPU is still shared. On two machines
 * each tier would get its own CPU and every query would pay a network round trip.
 */
export const databaseTier: Stage = {
  number: 2,
  title: 'database tier',
  whatAppears: 'Postgres as its own server, reached over TCP',
  topology: () => ({
    replicas: 0,
    webServers: 1,
    loadBalancer: false,
    redis: false,
    edge: false,
    unixSocket: false,
    app: {},
  }),
  async run(topology, context) {
    const { load, measures } = await steadyLoad(topology, context, () => profileMix(context.users))
    return {
      load,
      measures: { ...measures, staleReads: load.counts.staleReads ?? 0 },
      drill: undefined,
      notes: [
        'Same machine, so only the transport changed (TCP on loopback instead of the Unix socket); ' +
          'on separate machines each tier gets its own CPU and each query a network round trip.',
      ],
    }
  },
}
