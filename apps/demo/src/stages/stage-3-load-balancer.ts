import { profileMix } from '../load/mixes.js'
import { drillLoad, steadyLoad } from './phases.js'
import type { Stage } from './stage.js'

/** HAProxy with active health checks in front of 3 web servers; one is killed mid-load. */
export const loadBalancer: Stage = {
  number: 3,
  title: 'load balancer',
  whatAppears: 'HAProxy (health check every 500 ms) in front of 3 web servers',
  topology: () => ({
    replicas: 0,
    webServers: 3,
    loadBalancer: true,
    redis: false,
    edge: false,
    unixSocket: false,
    app: {},
  }),
  async run(topology, context) {
    const { load, measures } = await steadyLoad(topology, context, () => profileMix(context.users))
    const victim = topology.web[1]!
    let killedAt = 0
    let markedDownMs = 0
    const drill = await drillLoad(topology, context, `kill ${victim.name}`, profileMix(context.users), [
      {
        at: 1 / 3,
        what: `${victim.name} killed (SIGKILL)`,
        run: async () => {
          killedAt = Date.now()
          await victim.kill()
          await topology.loadBalancer?.waitForServer(victim.name, 'DOWN')
          markedDownMs = Date.now() - killedAt
        },
      },
    ])
    drill.measures = {
      haproxySawItDownAfterMs: markedDownMs,
      webServersLeft: topology.web.filter((w) => w.running).length,
    }
    return {
      load,
      measures: { ...measures, staleReads: load.counts.staleReads ?? 0 },
      drill,
      notes: [
        'On one machine the 3 web servers share the same CPUs, so they add no capacity; HAProxy adds a hop ' +
          'and 3 processes compete for the cores. On separate machines each web server brings its own CPUs.',
        `Killing ${victim.name} cost ${drill.errors} failed requests; the runner saw HAProxy's checks take it out after ` +
          `${markedDownMs} ms and the last error came ${drill.recoveryMs} ms after the kill.`,
      ],
    }
  },
}
