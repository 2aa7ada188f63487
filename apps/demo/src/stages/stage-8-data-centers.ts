import { type DataCenters, type SessionStoreLayout, startDataCenters } from '../datacenters/data-centers.js'
import { killRegion } from '../datacenters/region.js'
import { auditUploads, failRegionA, type WriteAudit } from '../datacenters/region-failover.js'
import { logInRegionalUsers, type RegionalUser, regionalMix } from '../datacenters/regional-load.js'
import { loggedInMix } from '../load/mixes.js'
import { runLoad } from '../load/run-load.js'
import { trickleUploads } from '../load/upload-trickle.js'
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

/** Which region the drill takes down, `DEMO_REGION_DOWN`: `a` (the primary's, default) or `b`. */
export function regionDown(value = process.env.DEMO_REGION_DOWN): 'a' | 'b' {
  if (value === undefined || value === '' || value === 'a') return 'a'
  if (value === 'b') return 'b'
  throw new Error(`DEMO_REGION_DOWN must be a or b, not ${JSON.stringify(value)}`)
}

const WEB_SERVERS_PER_REGION = 2
/** See `SessionStoreLayout`: `regional` runs the variant where a failed region's sessions die with it. */
export const SESSION_STORE: SessionStoreLayout = 'replicated'
/** Pause between the drill's uploads: the ledger the lost-write audit checks. */
const UPLOAD_PAUSE_MS = 40

const routes = (served: Record<string, number>) =>
  Object.entries(served)
    .sort()
    .map(([route, n]) => `${route} ${n.toLocaleString('en')}`)
    .join(', ')

const start = (topology: Topology, context: StageContext) =>
  startDataCenters(
    topology,
    { webServersPerRegion: WEB_SERVERS_PER_REGION, sessionStore: SESSION_STORE },
    (s) => context.progress.step(s),
  )

/** Region b down: its servers die, nothing to promote (the primary and the session store live in a). */
async function failRegionB(centers: DataCenters) {
  const killedAt = Date.now()
  const replica = centers.sessions?.replica
  await killRegion(centers.b, [() => centers.endpoints.b.kill(), ...(replica ? [() => replica.kill()] : [])])
  return { killedAt, postgresPromotedMs: -1, sessionStorePromotedMs: -1 }
}

function writesNote(audit: WriteAudit, failed: number): string {
  return (
    `Lost writes, counted against a ledger of photo uploads sent during the drill: ${audit.confirmed} confirmed ` +
    `(${audit.confirmedBeforeKill} before the kill), ${failed} not confirmed; ${audit.lostBeforeKill} confirmed ` +
    `before the kill and ${audit.lostAfterKill} confirmed after it are missing from the surviving primary.`
  )
}

/**
 * Two data centers on one machine: each region its own HAProxy, web servers and Redis (cache);
 * the Postgres primary and the session store in region a, their replicas in region b; a geo router
 * (HAProxy, by `x-region`) in front. Region a goes down whole mid-load: b's replica and session
 * store replica are promoted and a's users move to b (`DEMO_REGION_DOWN=b`: region b goes down).
 */
export const dataCenters: Stage = {
  number: 8,
  title: 'data centers',
  whatAppears:
    'two regions behind a geo router, the primary and session store in a with replicas in b, region failover',
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
    const { a, b, geo, sessions } = await start(topology, context)
    return {
      entry: geo.url,
      'geo router (x-region: a|b)': geo.url,
      'region a haproxy': a.loadBalancer.url,
      'region a redis (cache)': a.redis.url,
      'region b haproxy': b.loadBalancer.url,
      'region b redis (cache)': b.redis.url,
      ...(sessions && {
        'session store (a)': sessions.primary.url,
        'session store replica (b)': sessions.replica.url,
      }),
    }
  },
  async run(topology, context) {
    const { progress, durations, connections, users } = context
    const aShare = regionAShare()
    const down = regionDown()
    const up = down === 'a' ? 'b' : 'a'
    const centers = await start(topology, context)
    const { geo } = centers

    progress.step(`logging in ${connections * 2} users, ${Math.round(aShare * 100)}% in region a`)
    const vus: RegionalUser[] = await logInRegionalUsers(geo.url, connections * 2, users, ['a', 'b'], aShare)

    progress.step('warm-up')
    const warm = regionalMix(loggedInMix(vus, users), vus)
    await runLoad({ url: geo.url, durationMs: durations.warmupMs, connections, mix: warm.mix })
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
    let failover = { killedAt: 0, postgresPromotedMs: -1, sessionStorePromotedMs: -1 }
    const drillRun = drillLoad(
      topology,
      context,
      `region ${down} down`,
      failing.mix,
      [
        {
          at: 1 / 3,
          what:
            down === 'a'
              ? 'region a killed (all of it, primary and session store too); b promoted'
              : 'region b killed (all of it)',
          run: async () => {
            failover = down === 'a' ? await failRegionA(topology, centers) : await failRegionB(centers)
          },
        },
      ],
      geo.url,
    )
    const uploads = trickleUploads(geo.url, vus, drillRun, UPLOAD_PAUSE_MS)
    const [drill, ledger] = await Promise.all([drillRun, uploads])
    const survivor = down === 'a' ? topology.database.replicas[0] : topology.database.primary
    const audit = survivor
      ? await auditUploads(survivor, ledger.confirmed, failover.killedAt)
      : { confirmed: 0, confirmedBeforeKill: 0, lostBeforeKill: 0, lostAfterKill: 0 }

    const moved = `${down}->${up}`
    const firstOk = failing.firstOkAt[moved]
    const failoverMs = firstOk === undefined ? -1 : firstOk - failover.killedAt
    const ofDown = vus.filter((vu) => vu.region === down)
    const loggedOutDown = ofDown.filter((vu) => vu.loggedOut).length
    const loggedOutUp = vus.filter((vu) => vu.region === up && vu.loggedOut).length
    drill.measures = {
      regionDown: down,
      failoverMs,
      postgresPromotedMs: failover.postgresPromotedMs,
      sessionStorePromotedMs: failover.sessionStorePromotedMs,
      servedDuringDrill: routes(failing.served),
      [`region${down.toUpperCase()}Users`]: ofDown.length,
      [`region${down.toUpperCase()}UsersLoggedOut`]: loggedOutDown,
      [`region${up.toUpperCase()}UsersLoggedOut`]: loggedOutUp,
      loggedInUsers: vus.length,
      loggedOutUsers: loggedOutDown + loggedOutUp,
      uploadsConfirmed: audit.confirmed,
      uploadsConfirmedBeforeKill: audit.confirmedBeforeKill,
      uploadsNotConfirmed: ledger.failed,
      lostWritesBeforeKill: audit.lostBeforeKill,
      lostWritesAfterKill: audit.lostAfterKill,
    }
    const readsOff = databaseMeasures(tier, load.requests).readsOffPrimaryShare as number
    return {
      load,
      measures: {
        ...databaseMeasures(tier, load.requests),
        regionAShare: aShare,
        sessionStore: SESSION_STORE,
        servedSteady: routes(steady.served),
      },
      drill,
      regionTimeline: failing.slices(),
      notes: [
        `Geo split ${Math.round(aShare * 100)}/${Math.round((1 - aShare) * 100)}: in the steady phase ` +
          `requests went ${routes(steady.served)} (client region -> serving region); region b read from the replica ` +
          `in b, so ${Math.round((readsOff ?? 0) * 100)}% of reads were off the primary.`,
        `Region ${down} went down whole` +
          (down === 'a'
            ? `, with the primary and the session store: region b's replica was promoted ${failover.postgresPromotedMs} ms ` +
              `and the session store's replica ${failover.sessionStorePromotedMs} ms after the kill (at once, as an ` +
              `orchestrator would after detecting it; detection not included)`
            : '') +
          `; the first successful ${moved} answer came ${failoverMs} ms after the kill; ${drill.errors} failed requests, ` +
          `the last ${drill.recoveryMs} ms after the kill; during the drill requests went ${routes(failing.served)}.`,
        SESSION_STORE === 'replicated'
          ? `Sessions live in one store homed in region a with a replica in b, reached through each region's endpoint ` +
            `(HAProxy sending to whichever Redis says role:master): ${loggedOutDown} of ${ofDown.length} logged-in users ` +
            `of region ${down} and ${loggedOutUp} of ${up}'s were logged out, counted on every /me and profile write. ` +
            `A region's cache is invalidated by its own writes only, so the other region may serve a profile up to its ` +
            `TTL (60 s) old.`
          : `Sessions live in each region's own Redis, so region ${down}'s sessions died with it: ${loggedOutDown} of ` +
            `${ofDown.length} logged-in users of ${down} arrived in ${up} logged out (their data is safe in the ` +
            `database), ${loggedOutUp} of ${up}'s.`,
        writesNote(audit, ledger.failed),
      ],
    }
  },
}
