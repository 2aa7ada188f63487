import { logInUsers } from '../load/login.js'
import { loggedInMix } from '../load/mixes.js'
import type { WebServer } from '../topology/web-server.js'
import { drillLoad, steadyLoad } from './phases.js'
import type { Stage } from './stage.js'

/** @scale/sessions: sessions live in Redis, so web servers come and go under logged-in users. */
export const statelessWeb: Stage = {
  number: 7,
  title: 'stateless web tier',
  whatAppears: '@scale/sessions: sessions in Redis, any web server serves any user',
  topology: () => ({
    replicas: 2,
    webServers: 3,
    loadBalancer: true,
    redis: true,
    edge: true,
    unixSocket: false,
    app: { cache: true, sessions: true },
  }),
  async run(topology, context) {
    context.progress.step(`logging in ${context.connections * 2} users`)
    const users = await logInUsers(topology.entryUrl, context.connections * 2, context.users)
    const { load, measures } = await steadyLoad(topology, context, () => loggedInMix(users, context.users))
    const [first, second] = topology.web as [WebServer, WebServer]
    let added = ''
    const drill = await drillLoad(
      topology,
      context,
      'kill and add web servers',
      loggedInMix(users, context.users),
      [
        { at: 0.25, what: `${first.name} killed (SIGKILL)`, run: () => first.kill() },
        {
          at: 0.5,
          what: 'a new web server started and added to HAProxy',
          run: async () => {
            added = (await topology.addWebServer()).name
          },
        },
        { at: 0.75, what: `${second.name} killed (SIGKILL)`, run: () => second.kill() },
      ],
    )
    const loggedOut = drill.load.counts.loggedOutUsers ?? 0
    drill.measures = {
      loggedInUsers: users.length,
      loggedOutUsers: loggedOut,
      identityChecks: drill.load.counts.identityChecks ?? 0,
      serverAdded: added,
    }
    return {
      load,
      measures: {
        ...measures,
        loggedInUsers: users.length,
        loggedOutUsers: load.counts.loggedOutUsers ?? 0,
        identityChecks: load.counts.identityChecks ?? 0,
      },
      drill,
      notes: [
        `${users.length} logged-in users made ${drill.load.counts.identityChecks ?? 0} identity checks while ` +
          `2 web servers were killed and 1 added: ${loggedOut} users logged out, ${drill.errors} failed requests.`,
      ],
    }
  },
}
