import { join } from 'node:path'
import { Redis } from 'ioredis'
import { redisBinary } from './binaries.js'
import { freePort } from './free-port.js'
import { ManagedServer } from './managed-server.js'
import { startWithOneRetry } from './start-retry.js'
import { makeTempDir } from './temp-dir.js'

export interface StartRedisOptions {
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: string[]
}

/** One `redis-server` on a free loopback port, with its own dir. */
export class RedisServer extends ManagedServer {
  readonly dir: string

  constructor(port: number, dir: string, args: string[], ownsDir: boolean) {
    super({
      port,
      what: `redis-server on port ${port}`,
      ownedDir: ownsDir ? dir : undefined,
      process: {
        command: redisBinary('redis-server'),
        args: [
          ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir],
          ...['--save', '', '--appendonly', 'no'],
          // Marks the process as the kit's, so a leftover is easy to find (`pgrep -af scale-testkit`).
          ...['--proc-title-template', '{title} {listen-addr} {server-mode} scale-testkit'],
          ...args,
        ],
        logFile: join(dir, `redis-${port}.log`),
      },
    })
    this.dir = dir
  }

  /** `redis://127.0.0.1:<port>` */
  get url(): string {
    return `redis://${this.host}:${this.port}`
  }

  protected async answers(): Promise<boolean> {
    return (await this.command('ping')) === 'PONG'
  }

  /** Runs one command on a throwaway connection. */
  async command(name: string, ...args: (string | number)[]): Promise<unknown> {
    const client = new Redis({
      host: this.host,
      port: this.port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 2_000,
      enableOfflineQueue: false,
    })
    client.on('error', () => {})
    try {
      await client.connect()
      return await client.call(name, ...args)
    } finally {
      client.disconnect()
    }
  }

  /** Calls per command since start or the last `CONFIG RESETSTAT`, from `INFO commandstats`. */
  async commandCounts(): Promise<Record<string, number>> {
    const info = String(await this.command('info', 'commandstats'))
    const counts: Record<string, number> = {}
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      counts[match[1] as string] = Number(match[2])
    }
    return counts
  }
}

/**
 * Starts a `redis-server` on a free loopback port (never 6379), persisting nothing.
 *
 * @example
 * ```ts
 * const redis = await startRedis()
 * const client = new Redis(redis.port)
 * await redis.kill()      // inject an outage
 * await redis.start()     // and recover
 * await redis.dispose()
 * ```
 */
export function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  return startWithOneRetry(() => startRedisOnce(options))
}

async function startRedisOnce(options: StartRedisOptions): Promise<RedisServer> {
  const dir = await makeTempDir('redis')
  return new RedisServer(await freePort(), dir, options.args ?? [], true).startOrDiscard()
}
