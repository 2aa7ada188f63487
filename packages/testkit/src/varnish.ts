import { execFileSync } from 'node:child_process'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BinaryMissingError } from './errors.js'
import { freePort } from './free-port.js'
import { ManagedServer } from './managed-server.js'
import { runCommand } from './run-command.js'
import { startWithOneRetry } from './start-retry.js'
import { makeTempDir } from './temp-dir.js'
import { edgeVcl } from './varnish-vcl.js'

export interface StartVarnishOptions {
  /** The origin Varnish forwards misses to. */
  backend: { host: string; port: number }
  /**
   * Who may send `PURGE` and `BAN` (Varnish ACL entries).
   * @default ['127.0.0.0/8', '::1']
   */
  purgeAllowedFrom?: string[]
  /**
   * TTL of a response whose origin sent no `Cache-Control`/`Expires` (Varnish's `default_ttl`).
   * @default 120
   */
  defaultTtlSeconds?: number
  /**
   * Cache size (`-s malloc,<n>m`).
   * @default 64
   */
  storageMb?: number
  /** A VCL of your own instead of the kit's edge VCL (see `varnish-vcl.ts`). */
  vcl?: string
}

/** Hit/miss figures from `varnishstat -j`, since the last (re)start. */
export interface VarnishCounters {
  hits: number
  misses: number
  /** Requests that went to the origin without a cache lookup (pass, hit-for-pass). */
  passes: number
  /** Backend fetches Varnish made (misses, passes, background refreshes). */
  backendRequests: number
  /** Bans added with BAN (and the one Varnish adds at start). */
  bans: number
  /** Objects removed by PURGE. */
  purges: number
  /** Every `MAIN.*` counter, by name without the prefix. */
  all: Record<string, number>
}

const SETTLE_ON = ['client_req', 'cache_hit', 'cache_miss', 's_pass', 'backend_req', 'n_purges', 'bans_added']

const INSTALL_VARNISH =
  'Install Varnish (Debian/Ubuntu: `apt-get install varnish`) so that `varnishd` is found.'

const found = new Map<string, string>()

function varnishBinary(name: 'varnishd' | 'varnishstat'): string {
  const cached = found.get(name)
  if (cached) return cached
  const path = locate(name)
  found.set(name, path)
  return path
}

function locate(name: string): string {
  for (const candidate of [`/usr/sbin/${name}`, `/usr/bin/${name}`, `/usr/local/sbin/${name}`]) {
    try {
      execFileSync(candidate, ['-V'], { stdio: 'ignore' })
      return candidate
    } catch {}
  }
  try {
    return execFileSync('which', [name], { encoding: 'utf8' }).trim()
  } catch {
    throw new BinaryMissingError(name, INSTALL_VARNISH)
  }
}

/** `varnishstat -j` has two shapes: 6.x puts counters at the top, 7.x under `counters`. */
function parseVarnishstat(json: string): Record<string, number> {
  const parsed = JSON.parse(json) as Record<string, unknown>
  const counters = (parsed.counters ?? parsed) as Record<string, { value?: number } | unknown>
  const main: Record<string, number> = {}
  for (const [name, entry] of Object.entries(counters)) {
    if (!name.startsWith('MAIN.') || typeof entry !== 'object' || entry === null) continue
    const value = (entry as { value?: unknown }).value
    if (typeof value === 'number') main[name.slice(5)] = value
  }
  return main
}

/**
 * One `varnishd` on a free loopback port with its own work dir (`-n`), in front of one origin:
 * the kit's small CDN edge. Root runs it with Varnish's own privilege separation (users
 * `varnish`/`vcache` from the Debian package); anyone else runs it as themselves.
 */
export class VarnishServer extends ManagedServer {
  readonly dir: string
  readonly backend: { host: string; port: number }
  readonly #workDir: string

  constructor(port: number, dir: string, vclFile: string, options: StartVarnishOptions) {
    const workDir = join(dir, 'work')
    super({
      port,
      what: `varnishd on port ${port}`,
      ownedDir: dir,
      process: {
        command: varnishBinary('varnishd'),
        args: [
          '-F',
          ...['-a', `127.0.0.1:${port}`],
          ...['-n', workDir], // its path holds "scale-testkit-": a leftover is easy to find
          ...['-f', vclFile],
          ...['-s', `malloc,${options.storageMb ?? 64}m`],
          ...['-T', '127.0.0.1:0'],
          ...['-p', `default_ttl=${options.defaultTtlSeconds ?? 120}`],
          // Grace and keep come from the origin's headers only (see the VCL).
          ...['-p', 'default_grace=0', '-p', 'default_keep=0'],
          // Small: many of these run at once on a shared machine.
          ...['-p', 'thread_pools=1', '-p', 'thread_pool_min=5', '-p', 'thread_pool_max=100'],
          ...['-p', 'vsl_space=4M', '-p', 'ban_lurker_sleep=0.1'],
          // Counters reach varnishstat after every request, not every tenth.
          ...['-p', 'thread_stats_rate=0'],
          // No hold-down after a refused connect: a test that restarts the origin wants the very
          // next miss to reach it.
          ...['-p', 'backend_local_error_holddown=0', '-p', 'backend_remote_error_holddown=0'],
        ],
        logFile: join(dir, 'varnishd.log'),
      },
    })
    this.dir = dir
    this.backend = { ...options.backend }
    this.#workDir = workDir
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return `http://${this.host}:${this.port}`
  }

  /** The edge is up once its built-in readiness URL answers 200 (an empty cache is fine). */
  protected async answers(): Promise<boolean> {
    const response = await fetch(`${this.url}/__scale_varnish_ready`, { signal: AbortSignal.timeout(2_000) })
    await response.arrayBuffer()
    return response.status === 200
  }

  /**
   * Hit, miss, pass, ban and purge counts since the last start, from `varnishstat -j`.
   * A worker thread adds its figures to the shared counters just after it has sent the response,
   * so this reads until two reads 100 ms apart agree (at most ~2 s).
   */
  async counters(): Promise<VarnishCounters> {
    let all = await this.#readCounters()
    for (let attempt = 0; attempt < 20; attempt++) {
      await sleep(100)
      const again = await this.#readCounters()
      const settled = SETTLE_ON.every((name) => again[name] === all[name])
      all = again
      if (settled) break
    }
    return {
      hits: all.cache_hit ?? 0,
      misses: all.cache_miss ?? 0,
      passes: all.s_pass ?? 0,
      backendRequests: all.backend_req ?? 0,
      bans: all.bans_added ?? 0,
      purges: all.n_purges ?? 0,
      all,
    }
  }

  async #readCounters(): Promise<Record<string, number>> {
    return parseVarnishstat(await runCommand(varnishBinary('varnishstat'), ['-n', this.#workDir, '-1', '-j']))
  }
}

/**
 * Starts a Varnish edge on a free loopback port in front of `backend`, with a VCL that honours the
 * origin's `Cache-Control` (`s-maxage`, `max-age`, `stale-while-revalidate`, `stale-if-error`),
 * takes `PURGE <url>` and `BAN` + `Surrogate-Key` from loopback only, and answers `X-Cache: HIT|MISS`.
 *
 * @example
 * ```ts
 * const edge = await startVarnish({ backend: { host: '127.0.0.1', port: origin.port } })
 * await fetch(`${edge.url}/app.js`) // X-Cache: MISS
 * await fetch(`${edge.url}/app.js`) // X-Cache: HIT
 * await fetch(`${edge.url}/app.js`, { method: 'PURGE' })
 * await fetch(edge.url, { method: 'BAN', headers: { 'Surrogate-Key': 'product-42' } })
 * const { hits, misses } = await edge.counters()
 * await edge.dispose()
 * ```
 */
export function startVarnish(options: StartVarnishOptions): Promise<VarnishServer> {
  return startWithOneRetry(() => startVarnishOnce(options))
}

async function startVarnishOnce(options: StartVarnishOptions): Promise<VarnishServer> {
  const dir = await makeTempDir('varnish')
  // Under root, varnishd drops to its own users for compiling the VCL and serving: they must be
  // able to reach the work dir and read the VCL.
  await chmod(dir, 0o755)
  const vclFile = join(dir, 'edge.vcl')
  const vcl =
    options.vcl ??
    edgeVcl({
      backend: options.backend,
      purgeAllowedFrom: options.purgeAllowedFrom ?? ['127.0.0.0/8', '::1'],
    })
  await writeFile(vclFile, vcl, { mode: 0o644 })
  return new VarnishServer(await freePort(), dir, vclFile, options).startOrDiscard()
}
