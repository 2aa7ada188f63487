import { GeoRouter } from '../datacenters/geo-router.js'
import { killRegion, startRegion } from '../datacenters/region.js'
import { logInRegionalUsers, type RegionalUser, regionalMix } from '../datacenters/regional-load.js'
import { loggedInMix } from '../load/mixes.js'
import { runLoad } from '../load/run-load.js'
import type { Topology } from '../topology/topology.js'
import { databaseMeasures, delta, snapshot } from './measure.js'
import { drillLoad } from './phases.js'
import type { Stage, StageContext } from './stage.js'

/** Share of the logged-in users who live in region a (the rest in b): the geo split, `DEMO_REGION_A_SHARE`. */
export function regionAShare(value = process.env.DEMO_REGION_A_SHARE): number {
  if (value === undefined || value === '') return 0.5
  const share = Number(value)
  if (!(share > 0 && share < 1))
    throw new Error(
      `DEMO_REGION_A_SHARE must be a number between 0 and 1 (exclusive), not ${JSON.stringify(value)}`,
    )
  return share
}
const WEB_SERVERS_PER_REGION = 2
/**
 * `shared`: one session store for both regions, homed in region a with the primary (b's web servers
 * reach it across regions, as they do the primary for writes). `regional`: each region's own Redis;
 * a failed region's users then arrive logged out (the stage counts them either way).
 */
export const SESSION_STORE: 'shared' | 'regional' = 'shared'

const routes = (served: Record<string, number>) =>
  Object.entries(served)
    .sort()
    .map(([route, n]) => `${route} ${n.toLocaleString('en')}`)
    .join(', ')

/** Both regions and the geo router, handed to `topology` to stop. */
async function startDataCenters(topology: Topology, context: StageContext) {
  const { progress } = context
  progress.step('start region a (primary) and region b (replica)')
  const replica = topology.database.replicas[0]
  if (!replica) throw new Error('stage 8 needs the replica of region b')
  const a = await startRegion(topology, { name: 'a', webServers: WEB_SERVERS_PER_REGION, replicas: [] })
  const b = await startRegion(topology, {
    name: 'b',
    webServers: WEB_SERVERS_PER_REGION,
    replicas: [replica.url],
    sessionsRedis: SESSION_STORE === 'shared' ? a.redis.url : undefined,
  })
  // Counted with the other web servers (stats, teardown).
  topology.web.push(...a.web, ...b.web)
  progress.step('start the geo router')
  const geo = await GeoRouter.start([
    { name: 'a', port: a.loadBalancer.port },
    { name: 'b', port: b.loadBalancer.port },
  ])
  topology.adopt(() => geo.stop())
  return { a, b, geo }
}

/**
 * Two data centers on one machine: each region its own HAProxy, web servers and Redis (cache);
 * the Postgres primary in region a, its streaming replica serving region b's reads; a geo router
 * (HAProxy, by `x-region`) in front. Region b goes down whole mid-load and its users move to a.
 */
export const dataCenters: Stage = {
  number: 8,
  title: 'data centers',
  whatAppears: 'two regions behind a geo router, the primary in a, a replica serving b, region failover',
  topology: () => ({
    replicas: 1,
    webServers: 0,
    loadBalancer: false,
    redis: false,
    edge: false,
    unixSocket: false,
    app: {},
  }),
  async serve(topology, context) {
    const { a, b, geo } = await startDataCenters(topology, context)
    return {
      entry: geo.url,
      'geo router (x-region: a|b)': geo.url,
      'region a haproxy': a.loadBalancer.url,
      'region a redis': a.redis.url,
      'region b haproxy': b.loadBalancer.url,
      'region b redis': b.redis.url,
    }
  },
  async run(topology, context) {
    const { progress, durations, connections, users } = context
    const aShare = regionAShare()
    const { b, geo } = await startDataCenters(topology, context)

    progress.step(`logging in ${connections * 2} users, ${Math.round(aShare * 100)}% in region a`)
    const vus: RegionalUser[] = await logInRegionalUsers(geo.url, connections * 2, users, ['a', 'b'], aShare)

    progress.step('warm-up')
    await runLoad({
      url: geo.url,
      durationMs: durations.warmupMs,
      connections,
      mix: regionalMix(loggedInMix(vus, users), vus).mix,
    })
    progress.step(`steady load, ${durations.steadyMs / 1000} s`)
    const steady = regionalMix(loggedInMix(vus, users), vus)
    const before = await snapshot(topology)
    const load = await runLoad({
      url: geo.url,
      durationMs: durations.steadyMs,
      connections,
      mix: steady.mix,
      onProgress: (n) => progress.requests(n),
    })
    const tier = delta(before, await snapshot(topology))

    const failing = regionalMix(loggedInMix(vus, users), vus)
    let killedAt = 0
    const drill = await drillLoad(
      topology,
      context,
      'region b down',
      failing.mix,
      [
        {
          at: 1 / 3,
          what: 'region b killed: its HAProxy, web servers and Redis (SIGKILL)',
          run: async () => {
            killedAt = Date.now()
            await killRegion(b)
          },
        },
      ],
      geo.url,
    )
    const movedAt = failing.firstServedAt['b->a']
    const failoverMs = movedAt === undefined ? -1 : movedAt - killedAt
    const regionB = vus.filter((vu) => vu.region === 'b')
    const loggedOutB = regionB.filter((vu) => vu.loggedOut).length
    const loggedOutA = vus.filter((vu) => vu.region === 'a' && vu.loggedOut).length
    drill.measures = {
      failoverMs,
      servedDuringDrill: routes(failing.served),
      regionBUsers: regionB.length,
      regionBUsersLoggedOut: loggedOutB,
      regionAUsersLoggedOut: loggedOutA,
      loggedInUsers: vus.length,
      loggedOutUsers: loggedOutA + loggedOutB,
    }
    return {
      load,
      measures: {
        ...databaseMeasures(tier, load.requests),
        regionAShare: aShare,
        sessionStore: SESSION_STORE,
        servedSteady: routes(steady.served),
      },
      drill,
      notes: [
        `Geo split ${Math.round(aShare * 100)}/${Math.round((1 - aShare) * 100)}: in the steady phase ` +
          `requests went ${routes(steady.served)} (client region -> serving region); region b read from the replica ` +
          `in b, so ${Math.round(((databaseMeasures(tier, load.requests).readsOffPrimaryShare as number) ?? 0) * 100)}% of reads were off the primary.`,
        `Region b went down whole: the geo router sent b's users to a ${failoverMs} ms after the kill ` +
          `(${failing.firstServedAt['b->a'] ? 'first b->a answer' : 'never'}); ${drill.errors} failed requests, ` +
          `the last ${drill.recoveryMs} ms after the kill; during the drill requests went ${routes(failing.served)}.`,
        SESSION_STORE === 'shared'
          ? `Sessions live in one store shared by both regions, homed in region a with the primary; each region's own ` +
            `Redis is its profile cache. Region b's Redis died with b, its users' sessions did not: ${loggedOutB} of ` +
            `${regionB.length} logged-in users of b and ${loggedOutA} of a's were logged out, counted on every /me and ` +
            `profile write. Had region a failed, the store would have gone with it like the primary: that needs it ` +
            `replicated to b and promoted (not shown). A region's cache is invalidated by its own writes only, so the ` +
            `other region may serve a profile up to its TTL (60 s) old.`
          : `Sessions live in each region's own Redis, so region b's sessions died with it: ${loggedOutB} of ` +
            `${regionB.length} logged-in users of b arrived in a logged out (they must log in again; their data is ` +
            `safe in the primary), ${loggedOutA} of a's.`,
      ],
    }
  },
}
