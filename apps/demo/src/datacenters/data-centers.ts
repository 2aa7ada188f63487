import { type RedisServer, startRedis, waitFor } from '@scale/testkit'
import type { Topology } from '../topology/topology.js'
import { FailoverEndpoints } from './failover-endpoints.js'
import { GeoRouter } from './geo-router.js'
import { type RegionServers, startRegion } from './region.js'

/**
 * `replicated`: one session store for both regions, homed in region a (a Redis with a replica in
 * region b, promoted when a dies); each region reaches it through its failover endpoint.
 * `regional`: each region's own Redis; a failed region's users then arrive logged out.
 */
export type SessionStoreLayout = 'replicated' | 'regional'

export interface DataCenters {
  a: RegionServers
  b: RegionServers
  geo: GeoRouter
  /** The session store (region a) and its replica (region b); absent with `regional` sessions. */
  sessions: { primary: RedisServer; replica: RedisServer } | undefined
  /** Each region's endpoints for "the primary" and "the session store". */
  endpoints: { a: FailoverEndpoints; b: FailoverEndpoints }
}

/** A Redis replica of `primary`, resolved once its initial sync is done. */
async function startRedisReplica(primary: RedisServer): Promise<RedisServer> {
  const replica = await startRedis()
  await replica.command('replicaof', primary.host, primary.port)
  await waitFor(
    'the session store replica to sync',
    async () => String(await replica.command('info', 'replication')).includes('master_link_status:up'),
    { timeoutMs: 20_000 },
  )
  return replica
}

/** Both regions, the session store and its replica, the endpoints and the geo router, handed to `topology` to stop. */
export async function startDataCenters(
  topology: Topology,
  options: { webServersPerRegion: number; sessionStore: SessionStoreLayout },
  step: (what: string) => void,
): Promise<DataCenters> {
  const primary = topology.database.primary
  const standby = topology.database.replicas[0]
  if (!standby) throw new Error('stage 8 needs the replica of region b')
  step('start the session store in a and its replica in b')
  const store = await startRedis()
  topology.adopt(() => store.dispose())
  const storeReplica = await startRedisReplica(store)
  topology.adopt(() => storeReplica.dispose())
  const targets = {
    postgres: { primary: primary.port, standby: standby.port },
    sessions: { primary: store.port, standby: storeReplica.port },
  }
  const endpointsA = await FailoverEndpoints.start('a', targets)
  topology.adopt(() => endpointsA.stop())
  const endpointsB = await FailoverEndpoints.start('b', targets)
  topology.adopt(() => endpointsB.stop())
  const replicated = options.sessionStore === 'replicated'

  step('start region a (primary) and region b (replica)')
  const a = await startRegion(topology, {
    name: 'a',
    webServers: options.webServersPerRegion,
    primary: endpointsA.postgresUrl(primary.url),
    replicas: [],
    sessionsRedis: replicated ? endpointsA.sessionsUrl : undefined,
  })
  const b = await startRegion(topology, {
    name: 'b',
    webServers: options.webServersPerRegion,
    primary: endpointsB.postgresUrl(primary.url),
    replicas: [standby.url],
    sessionsRedis: replicated ? endpointsB.sessionsUrl : undefined,
  })
  // Counted with the other web servers (stats, teardown).
  topology.web.push(...a.web, ...b.web)
  step('start the geo router')
  const geo = await GeoRouter.start([
    { name: 'a', port: a.loadBalancer.port },
    { name: 'b', port: b.loadBalancer.port },
  ])
  topology.adopt(() => geo.stop())
  return {
    a,
    b,
    geo,
    sessions: replicated ? { primary: store, replica: storeReplica } : undefined,
    endpoints: { a: endpointsA, b: endpointsB },
  }
}
