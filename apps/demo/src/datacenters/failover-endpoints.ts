import { freePort } from '@scale/testkit'
import { HaproxyProcess } from './haproxy-process.js'

export interface EndpointTargets {
  /** Region a's Postgres primary, then region b's streaming replica (promoted when a dies). */
  postgres: { primary: number; standby: number }
  /** The session store's Redis in region a, then its replica in region b (`REPLICAOF NO ONE` when a dies). */
  sessions: { primary: number; standby: number }
}

/**
 * A region's fixed addresses for "the database primary" and "the session store" (TCP HAProxy),
 * what a region's web servers connect to instead of region a's servers directly, so promoting
 * region b's copies needs no web server to be reconfigured or restarted.
 *
 * - Postgres: region a's primary; region b's node is a `backup` server, used once a's fails its
 *   checks. Writes reaching it before its promotion fail (counted as errors). A plain TCP check is
 *   enough here because region a never comes back during the drill; a production setup asks an
 *   agent which node is the primary (Patroni's REST check), so a returning old primary gets nothing.
 * - Sessions: whichever Redis answers `role:master` (the usual HAProxy check for Redis), so the
 *   replica takes traffic only once it is promoted.
 */
export class FailoverEndpoints {
  readonly postgresPort: number
  readonly sessionsPort: number
  readonly #process: HaproxyProcess

  private constructor(postgresPort: number, sessionsPort: number, process: HaproxyProcess) {
    this.postgresPort = postgresPort
    this.sessionsPort = sessionsPort
    this.#process = process
  }

  /** `sessionsUrl` for the web servers of this region. */
  get sessionsUrl(): string {
    return `redis://127.0.0.1:${this.sessionsPort}`
  }

  /** The primary's connection string with this endpoint as host and port. */
  postgresUrl(primaryUrl: string): string {
    const url = new URL(primaryUrl)
    url.hostname = '127.0.0.1'
    url.port = String(this.postgresPort)
    return url.toString()
  }

  static async start(region: string, targets: EndpointTargets): Promise<FailoverEndpoints> {
    const postgresPort = await freePort()
    const sessionsPort = await freePort()
    // Pooled connections sit idle between requests: long client/server timeouts, so the endpoint
    // never closes a healthy one; a server marked down has its connections cut at once.
    const check =
      'check inter 250ms fastinter 250ms downinter 250ms fall 2 rise 1 on-marked-down shutdown-sessions'
    const config = `global
  maxconn 4096

defaults
  mode tcp
  # A server that just died but is not marked down yet refuses connections: fail over to another
  # server at once instead of HAProxy's default 3 retries a second apart, during which the client
  # holds a connection that answers nothing.
  retries 1
  option redispatch 1
  timeout connect 250ms
  timeout client 1h
  timeout server 1h
  timeout check 1s

frontend postgres
  bind 127.0.0.1:${postgresPort}
  default_backend postgres

backend postgres
  server pg-a 127.0.0.1:${targets.postgres.primary} ${check}
  server pg-b 127.0.0.1:${targets.postgres.standby} ${check} backup

frontend sessions
  bind 127.0.0.1:${sessionsPort}
  default_backend sessions

backend sessions
  option tcp-check
  tcp-check connect
  tcp-check send PING\\r\\n
  tcp-check expect string +PONG
  tcp-check send info\\ replication\\r\\n
  tcp-check expect string role:master
  tcp-check send QUIT\\r\\n
  tcp-check expect string +OK
  server sessions-a 127.0.0.1:${targets.sessions.primary} ${check}
  server sessions-b 127.0.0.1:${targets.sessions.standby} ${check}
`
    const process = await HaproxyProcess.start(`endpoints-${region}`, config, sessionsPort)
    return new FailoverEndpoints(postgresPort, sessionsPort, process)
  }

  kill(): Promise<void> {
    return this.#process.kill()
  }

  stop(): Promise<void> {
    return this.#process.stop()
  }
}
