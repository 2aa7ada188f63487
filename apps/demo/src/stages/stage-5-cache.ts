import { profileMix } from '../load/mixes.js'
import { ratio } from './measure.js'
import { drillLoad, steadyLoad } from './phases.js'
import type { Stage } from './stage.js'

/** @scale/read-through-cache in front of the profile reads; Redis is killed and comes back. */
export const cache: Stage = {
  number: 5,
  title: 'cache',
  whatAppears: 'Redis and @scale/read-through-cache for GET /users/:id',
  topology: () => ({
    replicas: 2,
    webServers: 3,
    loadBalancer: true,
    redis: true,
    edge: false,
    unixSocket: false,
    app: { cache: true },
  }),
  async run(topology, context) {
    const { load, tier, measures } = await steadyLoad(topology, context, () => profileMix(context.users))
    const redis = topology.redis!
    const drill = await drillLoad(topology, context, 'kill Redis', profileMix(context.users), [
      { at: 1 / 3, what: 'redis killed (SIGKILL)', run: () => redis.kill() },
      { at: 2 / 3, what: 'redis started again (empty)', run: () => redis.start() },
    ])
    drill.measures = { staleReads: drill.load.counts.staleReads ?? 0 }
    const hitRatio = ratio(tier.cacheHits, tier.cacheHits + tier.cacheMisses)
    return {
      load,
      measures: {
        ...measures,
        userLoadsFromDb: tier.userLoads,
        staleReads: load.counts.staleReads ?? 0,
      },
      drill,
      notes: [
        `${Math.round(hitRatio * 100)}% of profile reads were answered by the cache ` +
          `(${tier.userLoads} database loads for ${tier.cacheHits + tier.cacheMisses} cached reads).`,
        `With Redis killed, reads fell through to the database: ${drill.errors} failed requests.`,
      ],
    }
  },
}
