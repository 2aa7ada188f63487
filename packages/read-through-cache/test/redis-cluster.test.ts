import { startRedisCluster } from '@scale/testkit'
import { defineCacheBehaviour } from './helpers/behaviour-suite.js'

defineCacheBehaviour('a 3-master Redis Cluster', async () => {
  const cluster = await startRedisCluster()
  return {
    target: { kind: 'cluster', nodes: cluster.startupNodes },
    // A whole-cluster outage: a single master's death would be healed by its replica's failover.
    kill: async () => {
      await Promise.all(cluster.nodes.map((node) => node.kill()))
    },
    start: async () => {
      await Promise.all(cluster.nodes.map((node) => node.start()))
      await cluster.waitForHealthy(60_000)
    },
    stop: () => cluster.stop(),
  }
})
