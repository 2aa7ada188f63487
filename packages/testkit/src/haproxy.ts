import { writeFile } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { haproxyBinary } from './binaries.js'
import { ServerTimeoutError, TestkitError } from './errors.js'
import { freePort } from './free-port.js'
import { ManagedServer } from './managed-server.js'
import { makeTempDir } from './temp-dir.js'
import { waitFor } from './wait.js'

/** One server behind the load balancer. */
export interface HaproxyBackend {
  /** Unique within the pool; letters, digits, `-`, `_`, `.`. */
  name: string
  port: number
  /** @default '127.0.0.1' */
  host?: string
}

export interface StartHaproxyOptions {
  backends: HaproxyBackend[]
  /** Active health check: `GET <path>` must answer 2xx/3xx. @default '/healthz' */
  healthCheckPath?: string
  /** Time between checks of each server. @default 500 */
  checkIntervalMs?: number
  /**
   * How long one check may take. Without it HAProxy allows only `checkIntervalMs`, and a busy
   * server that answers slowly is taken out though it serves.
   * @default 2_000
   */
  checkTimeoutMs?: number
  /** Failed checks before a server is taken out. @default 2 */
  fall?: number
  /** Passed checks before a server is put back. @default 2 */
  rise?: number
  /** @default 'roundrobin' */
  balance?: 'roundrobin' | 'leastconn'
  /** Cap on one request's wait for a server's answer. @default 10_000 */
  serverTimeoutMs?: number
  /**
   * When a request is tried again on another server (HAProxy's `retry-on`), up to `retries` times.
   * `'conn-failure empty-response'` also re-sends a request whose server died before answering.
   * @default 'conn-failure'
   */
  retryOn?: string
  /** @default 1 */
  retries?: number
  /**
   * Give each request a unique ID in `X-Request-Id` (passed to the servers) and log one line per
   * request with it to `<dir>/haproxy.log` (`request_id=… status=… server=… time_ms=… request="…"`),
   * so a request can be followed from the load balancer into the servers' logs.
   */
  requestIds?: boolean
}

/** What HAProxy reports for one server (`show stat`). */
export interface HaproxyServerState {
  name: string
  /** `UP`, `DOWN`, `MAINT`, `UP 1/2` (going down), `DOWN 1/2` (coming up), `no check` … */
  status: string
  /** Requests/connections sent to it since start. */
  sessionsTotal: number
}

const NAME = /^[A-Za-z0-9._-]+$/
const POOL = 'web'

function serverLine(backend: HaproxyBackend): string {
  if (!NAME.test(backend.name)) {
    throw new TestkitError(
      'E_TESTKIT_INVALID_OPTIONS',
      `backend name ${JSON.stringify(backend.name)} is not valid`,
    )
  }
  return `${backend.name} ${backend.host ?? '127.0.0.1'}:${backend.port}`
}

/** HAProxy in front of a pool of HTTP servers, on a free loopback port, with active health checks. */
export class HaproxyServer extends ManagedServer {
  readonly dir: string
  readonly #socket: string
  readonly #serverSettings: string

  constructor(port: number, dir: string, configFile: string, serverSettings: string) {
    super({
      port,
      what: `haproxy on port ${port}`,
      ownedDir: dir,
      process: {
        command: haproxyBinary(),
        // -db: stay in the foreground (the kit owns the process); the config path holds "scale-testkit".
        args: ['-db', '-f', configFile],
        logFile: join(dir, 'haproxy.log'),
      },
    })
    this.dir = dir
    this.#serverSettings = serverSettings
    this.#socket = join(dir, 'admin.sock')
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return `http://${this.host}:${this.port}`
  }

  /** Up once its admin socket answers (the runtime API the kit drives it through). */
  protected async answers(): Promise<boolean> {
    return (await this.command('show info')).includes('Name: HAProxy')
  }

  /** Runs one command on the admin socket (runtime API) and returns its answer. */
  command(command: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(this.#socket)
      let answer = ''
      socket.setTimeout(5_000, () =>
        socket.destroy(new ServerTimeoutError(`haproxy's answer to \`${command}\``, 5_000)),
      )
      socket.on('connect', () => socket.end(`${command}\n`))
      socket.on('data', (chunk) => {
        answer += chunk.toString()
      })
      socket.on('error', reject)
      socket.on('close', () => resolve(answer))
    })
  }

  /** Every server of the pool with its health status and request count. */
  async servers(): Promise<HaproxyServerState[]> {
    const csv = await this.command('show stat')
    const [header = '', ...rows] = csv.replace(/^# /, '').trim().split('\n')
    const columns = header.split(',')
    const at = (row: string[], name: string) => row[columns.indexOf(name)] ?? ''
    return rows
      .map((line) => line.split(','))
      .filter((row) => at(row, 'pxname') === POOL && !['BACKEND', 'FRONTEND'].includes(at(row, 'svname')))
      .map((row) => ({
        name: at(row, 'svname'),
        status: at(row, 'status'),
        sessionsTotal: Number(at(row, 'stot')),
      }))
  }

  /** Waits until HAProxy's health checks report `name` as `status` (e.g. `UP` after a start, `DOWN` after a kill). */
  async waitForServer(name: string, status: 'UP' | 'DOWN' | 'MAINT', timeoutMs = 30_000): Promise<void> {
    await waitFor(
      `haproxy to see ${name} ${status}`,
      async () => (await this.servers()).find((s) => s.name === name)?.status === status,
      { timeoutMs, intervalMs: 100 },
    )
  }

  /**
   * Adds a server to the running pool (no reload, no dropped connection) with the pool's health
   * check; it takes traffic once its checks pass (`waitForServer(name, 'UP')`).
   */
  async addBackend(backend: HaproxyBackend): Promise<void> {
    // A server added at runtime ignores `default-server` (HAProxy 2.6): it gets the same settings
    // spelled out, or its checks run every 2 s with 3 falls and it keeps no idle connections (every
    // request would open a new one: measured 5-8x fewer requests/s).
    await this.#expect(
      `add server ${POOL}/${serverLine(backend)} ${this.#serverSettings}`,
      /New server registered/,
    )
    // A server added at runtime starts in maintenance with its checks off.
    await this.#expect(`enable health ${POOL}/${backend.name}`, /^\s*$/)
    await this.#expect(`enable server ${POOL}/${backend.name}`, /^\s*$/)
  }

  /** Drains `name` (no new requests), waits for its open connections to end, and deletes it. */
  async removeBackend(name: string, timeoutMs = 10_000): Promise<void> {
    await this.#expect(`disable server ${POOL}/${name}`, /^\s*$/)
    await this.command(`shutdown sessions server ${POOL}/${name}`)
    await waitFor(
      `haproxy to delete ${name}`,
      async () => /Server deleted/.test(await this.command(`del server ${POOL}/${name}`)),
      { timeoutMs, intervalMs: 100 },
    )
  }

  async #expect(command: string, answer: RegExp): Promise<void> {
    const reply = await this.command(command)
    if (!answer.test(reply)) {
      throw new TestkitError('E_TESTKIT_HAPROXY_COMMAND', `haproxy refused \`${command}\`: ${reply.trim()}`)
    }
  }
}

/**
 * Starts HAProxy (HTTP mode) on a free loopback port in front of `backends`, each checked with
 * `GET /healthz` every 500 ms (down after 2 failures, up after 2 passes). Servers can be added and
 * removed at runtime through the admin socket.
 *
 * @example
 * ```ts
 * const lb = await startHaproxy({ backends: [{ name: 'web-1', port: 3001 }, { name: 'web-2', port: 3002 }] })
 * await fetch(`${lb.url}/users/1`)
 * await lb.addBackend({ name: 'web-3', port: 3003 })
 * await lb.waitForServer('web-3', 'UP')
 * await lb.removeBackend('web-1')
 * await lb.dispose()
 * ```
 */
export async function startHaproxy(options: StartHaproxyOptions): Promise<HaproxyServer> {
  const dir = await makeTempDir('haproxy')
  const port = await freePort()
  const inter = options.checkIntervalMs ?? 500
  // Every server's settings: in `default-server` for the configured ones, spelled out for those
  // added at runtime. Idle connections are kept 5 s for reuse (a configured server's default).
  const serverSettings =
    `check inter ${inter}ms fastinter ${inter}ms downinter ${inter}ms fall ${options.fall ?? 2} ` +
    `rise ${options.rise ?? 2} pool-max-conn -1 pool-purge-delay 5s`
  if (options.retryOn !== undefined && !/^[a-z0-9 -]+$/.test(options.retryOn)) {
    throw new TestkitError(
      'E_TESTKIT_INVALID_OPTIONS',
      `retryOn ${JSON.stringify(options.retryOn)} is not valid`,
    )
  }
  const config = `global
  stats socket ${join(dir, 'admin.sock')} mode 600 level admin
  maxconn 4096
${options.requestIds ? '  log stdout format raw local0 info\n' : ''}
defaults
  mode http
${options.requestIds ? '  log global\n' : ''}  timeout connect 1s
  timeout client 30s
  timeout server ${options.serverTimeoutMs ?? 10_000}ms
  timeout http-keep-alive 10s
  timeout check ${options.checkTimeoutMs ?? 2_000}ms
  # A failed request (see retryOn) is tried again, on another server.
  retries ${options.retries ?? 1}
  retry-on ${options.retryOn ?? 'conn-failure'}
  option redispatch 1

frontend public
  bind 127.0.0.1:${port}
${
  options.requestIds
    ? '  unique-id-format %[uuid()]\n  unique-id-header X-Request-Id\n' +
      '  log-format "request_id=%ID status=%ST server=%s time_ms=%Tt request=%{+Q}r"\n'
    : ''
}  default_backend ${POOL}

backend ${POOL}
  balance ${options.balance ?? 'roundrobin'}
  option httpchk GET ${options.healthCheckPath ?? '/healthz'}
  http-check expect status 200-399
  default-server ${serverSettings}
${options.backends.map((backend) => `  server ${serverLine(backend)}`).join('\n')}
`
  const configFile = join(dir, 'haproxy.cfg')
  await writeFile(configFile, config)
  return new HaproxyServer(port, dir, configFile, serverSettings).startOrDiscard()
}
