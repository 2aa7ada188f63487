import { mkdirSync, rmSync } from 'node:fs'
import {
  type HaproxyServer,
  type PostgresCluster,
  type RedisServer,
  startHaproxy,
  startRedis,
} from '@scale/testkit'
import type { AppConfigInput } from '../app/config.js'
import { startDatabase } from './database.js'
import { type Edge, startEdge } from './edge.js'
import { WebServer } from './web-server.js'
import { WorkerProcess } from './worker.js'

/** What one stage runs; each part is a real server. */
export interface TopologySpec {
  /** Streaming replicas beside the primary. */
  replicas: number
  webServers: number
  /** HAProxy in front of the web servers (else the load goes to the first web server). */
  loadBalancer: boolean
  redis: boolean
  /** A Varnish edge in front of everything, for the assets. */
  edge: boolean
  /** Stage 1: the app reaches Postgres over its Unix socket, as on one box; later over TCP. */
  unixSocket: boolean
  /** The blocks switched on in the app. */
  app: Pick<AppConfigInput, 'cache' | 'sessions'>
  /** Stage 9: photo worker processes (they need `redis`). */
  workers?: number
  /** Stage 10: HAProxy gives each request an X-Request-Id and logs it. */
  requestIds?: boolean
  users: number
  seed: number
  logDir: string
}

/** The running servers of a stage, each killable, all stopped by `stop()`. */
export class Topology {
  readonly spec: TopologySpec
  database!: PostgresCluster
  redis: RedisServer | undefined
  readonly web: WebServer[] = []
  loadBalancer: HaproxyServer | undefined
  edge: Edge | undefined
  readonly workers: WorkerProcess[] = []
  #nextWeb = 1
  #nextWorker = 1
  /** Servers a stage started itself (stages 8 and 11), stopped first by `stop()`. */
  readonly #adopted: (() => Promise<void>)[] = []

  private constructor(spec: TopologySpec) {
    this.spec = spec
  }

  /** Starts everything in dependency order; on a failure stops what had started and rethrows. */
  static async start(spec: TopologySpec, onStep: (step: string) => void = () => {}): Promise<Topology> {
    // This run's logs only.
    rmSync(spec.logDir, { recursive: true, force: true })
    mkdirSync(spec.logDir, { recursive: true })
    const topology = new Topology(spec)
    try {
      onStep(
        `postgres: primary + ${spec.replicas} replicas, seeding ${spec.users.toLocaleString('en')} users`,
      )
      topology.database = await startDatabase({ replicas: spec.replicas, seed: spec.seed, users: spec.users })
      if (spec.redis) {
        onStep('redis')
        topology.redis = await startRedis()
      }
      if (spec.loadBalancer) {
        onStep('haproxy')
        // Started empty: each web server joins at runtime, as a new server would in production.
        // A request whose server dies before answering is re-sent to another one (what a
        // production HAProxy config does); requests still lost show up in the drills.
        topology.loadBalancer = await startHaproxy({
          backends: [],
          checkIntervalMs: 500,
          retryOn: 'conn-failure empty-response',
          retries: 2,
          ...(spec.requestIds && { requestIds: true }),
        })
      }
      if (spec.edge) {
        onStep('varnish edge')
        topology.edge = await startEdge(topology.loadBalancer?.url ?? '')
      }
      onStep(`${spec.webServers} web server${spec.webServers > 1 ? 's' : ''}`)
      await Promise.all(Array.from({ length: spec.webServers }, () => topology.addWebServer()))
      if (spec.workers) {
        onStep(`${spec.workers} photo worker${spec.workers > 1 ? 's' : ''}`)
        await Promise.all(Array.from({ length: spec.workers }, () => topology.addWorker()))
      }
      return topology
    } catch (error) {
      await topology.stop()
      throw error
    }
  }

  /** Where the web tier is reached: the load balancer, or the only web server. */
  get originUrl(): string {
    return this.loadBalancer?.url ?? this.web[0]?.url ?? ''
  }

  /** Where users come in: the edge when there is one, else the origin. */
  get entryUrl(): string {
    return this.edge?.url ?? this.originUrl
  }

  #appConfig(name: string): AppConfigInput & { name: string } {
    const primary = this.database.primary
    return {
      name,
      primary: this.spec.unixSocket
        ? // The socket directory: the same machine, no TCP (what "one server" means).
          { host: primary.dataDir, port: primary.port, user: primary.user, database: primary.database }
        : primary.url,
      replicas: this.database.replicas.map((r) => r.url),
      ...(this.redis && { redis: this.redis.url }),
      ...this.spec.app,
      // Pages point their images and CSS at the edge once there is one (stage 6).
      cdnBaseUrl: this.edge?.url ?? '',
      logLevel: 'info',
    }
  }

  async #startWebServer(): Promise<WebServer> {
    const server = new WebServer(this.#appConfig(`web-${this.#nextWeb++}`), this.spec.logDir)
    this.web.push(server)
    await server.start()
    return server
  }

  /** A new web server, added to the load balancer at runtime; resolves once its checks pass. */
  async addWebServer(): Promise<WebServer> {
    const server = await this.#startWebServer()
    if (this.loadBalancer) {
      await this.loadBalancer.addBackend({ name: server.name, port: server.port })
      await this.loadBalancer.waitForServer(server.name, 'UP')
    }
    return server
  }

  /** A new photo worker process (stage 9); resolves once it takes jobs. */
  async addWorker(): Promise<WorkerProcess> {
    if (!this.redis) throw new Error('photo workers need Redis (spec.redis)')
    const worker = new WorkerProcess(
      { name: `worker-${this.#nextWorker++}`, primary: this.database.primary.url, redis: this.redis.url },
      this.spec.logDir,
    )
    this.workers.push(worker)
    await worker.start()
    return worker
  }

  /** Every server's URL, for `--stage N` and the report. */
  urls(): Record<string, string> {
    const urls: Record<string, string> = {}
    if (this.edge) urls['edge (varnish)'] = this.edge.url
    if (this.loadBalancer) urls['load balancer (haproxy)'] = this.loadBalancer.url
    for (const w of this.web) urls[w.name] = w.url
    urls['postgres primary'] = this.database?.primary.url ?? ''
    for (const r of this.database?.replicas ?? []) urls[`postgres ${r.name}`] = r.url
    if (this.redis) urls.redis = this.redis.url
    for (const w of this.workers) urls[`${w.name} metrics`] = w.metricsUrl
    return urls
  }

  /** Hands a server a stage started itself to `stop()`, so Ctrl-C and failures stop it too. */
  adopt(stop: () => Promise<void>): void {
    this.#adopted.push(stop)
  }

  /** Stops everything, the entry side first; safe to call twice and after a partial start. */
  async stop(): Promise<void> {
    const adopted = this.#adopted.splice(0).reverse()
    for (const stopOne of adopted) await stopOne().catch(() => {})
    await this.edge?.dispose().catch(() => {})
    await this.loadBalancer?.dispose().catch(() => {})
    await Promise.all(this.web.map((w) => w.stop().catch(() => {})))
    await Promise.all(this.workers.map((w) => w.stop().catch(() => {})))
    await this.redis?.dispose().catch(() => {})
    await this.database?.stop().catch(() => {})
  }
}
