import { type HaproxyServer, type RedisServer, startHaproxy, startRedis } from '@scale/testkit'
import type { Topology } from '../topology/topology.js'
import { WebServer } from '../topology/web-server.js'

/** One data center: its own Redis (profile cache; sessions too unless shared), load balancer and web servers. */
export interface RegionServers {
  name: string
  redis: RedisServer
  loadBalancer: HaproxyServer
  web: WebServer[]
}

export interface RegionOptions {
  name: string
  webServers: number
  /** Where this region's web servers write: the primary, or the region's failover endpoint for it. */
  primary: string
  /** Where this region reads from: the primary's own region reads it, the other its replica. */
  replicas: string[]
  /** The session store shared by every region (its endpoint); without it sessions live in the region's own Redis. */
  sessionsRedis?: string | undefined
}

/** Starts a region's servers (handed to `topology` to stop), the web servers on `options.primary`. */
export async function startRegion(topology: Topology, options: RegionOptions): Promise<RegionServers> {
  const redis = await startRedis()
  topology.adopt(() => redis.dispose())
  const loadBalancer = await startHaproxy({
    backends: [],
    checkIntervalMs: 500,
    retryOn: 'conn-failure empty-response',
    retries: 2,
  })
  topology.adopt(() => loadBalancer.dispose())
  const web = Array.from(
    { length: options.webServers },
    (_, i) =>
      new WebServer(
        {
          name: `${options.name}-web-${i + 1}`,
          primary: options.primary,
          replicas: options.replicas,
          redis: redis.url,
          ...(options.sessionsRedis && { sessionsRedis: options.sessionsRedis }),
          cache: true,
          sessions: true,
          cdnBaseUrl: '',
          logLevel: 'info',
        },
        topology.spec.logDir,
      ),
  )
  for (const server of web) topology.adopt(() => server.stop())
  await Promise.all(
    web.map(async (server) => {
      await server.start()
      await loadBalancer.addBackend({ name: server.name, port: server.port })
      await loadBalancer.waitForServer(server.name, 'UP')
    }),
  )
  return { name: options.name, redis, loadBalancer, web }
}

/**
 * The whole region goes down at once: load balancer, web servers and Redis, and whatever else runs
 * there (`alsoThere`: region a's database primary, session store and endpoints), all SIGKILLed.
 */
export async function killRegion(
  region: RegionServers,
  alsoThere: (() => Promise<void>)[] = [],
): Promise<void> {
  await Promise.all([
    region.loadBalancer.kill(),
    ...region.web.map((w) => w.kill()),
    region.redis.kill(),
    ...alsoThere.map((kill) => kill()),
  ])
}
