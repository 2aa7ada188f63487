import { freePort } from '@scale/testkit'
import { HaproxyProcess } from './haproxy-process.js'

export interface Region {
  /** `a`, `b`: what clients send in `x-region`. */
  name: string
  /** The region's own load balancer. */
  port: number
}

/**
 * The geo router: an HAProxy in front of the regions' load balancers. A client's `x-region`
 * header picks its region; a region whose load balancer fails its health checks (every 250 ms,
 * out after 2 failures) gets no traffic and its clients go to the first region that is up.
 * Answers carry `x-served-region`, so the load side sees where each request went.
 */
export class GeoRouter {
  readonly port: number
  readonly #process: HaproxyProcess

  private constructor(port: number, process: HaproxyProcess) {
    this.port = port
    this.#process = process
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  static async start(regions: Region[]): Promise<GeoRouter> {
    const port = await freePort()
    const backend = (r: Region) => `region-${r.name}`
    const config = `global
  maxconn 4096

defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 10s
  timeout check 1s
  retries 2
  retry-on conn-failure empty-response
  option redispatch 1

frontend geo
  bind 127.0.0.1:${port}
${regions.map((r) => `  acl from-${r.name} req.hdr(x-region) -i ${r.name}\n  acl up-${r.name} nbsrv(${backend(r)}) gt 0`).join('\n')}
${regions.map((r) => `  use_backend ${backend(r)} if from-${r.name} up-${r.name}`).join('\n')}
  # Failover: a client whose region is down (or who names none) goes to the first region up.
${regions.map((r) => `  use_backend ${backend(r)} if up-${r.name}`).join('\n')}
  default_backend ${backend(regions[0] as Region)}

${regions
  .map(
    (r) => `backend ${backend(r)}
  option httpchk GET /healthz
  http-check expect status 200-399
  http-response set-header x-served-region ${r.name}
  server lb-${r.name} 127.0.0.1:${r.port} check inter 250ms fastinter 250ms downinter 250ms fall 2 rise 2
`,
  )
  .join('\n')}`
    return new GeoRouter(port, await HaproxyProcess.start('geo', config, port))
  }

  async stop(): Promise<void> {
    await this.#process.stop()
  }
}
