import { join } from 'node:path'
import { Redis } from 'ioredis'
import { redisBinary } from './binaries.js'
import { freePort } from './free-port.js'
import { ServerProcess } from './server-process.js'
import { startWithOneRetry } from './start-retry.js'
import { makeTempDir, removeTempDir } from './temp-dir.js'

export interface StartRedisOptions {
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: string[]
}

/** One `redis-server` on a free loopback port, with its own dir. */
export class RedisServer {
  readonly host = '127.0.0.1'
  readonly port: number
  readonly dir: string
  readonly #process: ServerProcess
  readonly #ownsDir: boolean

  constructor(port: number, dir: string, args: string[], ownsDir: boolean) {
    this.port = port
    this.dir = dir
    this.#ownsDir = ownsDir
    this.#process = new ServerProcess({
      command: redisBinary('redis-server'),
      args: [
        ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir],
        ...['--save', '', '--appendonly', 'no'],
        // Marks the process as the kit's, so a leftover is easy to find (`pgrep -af scale-testkit`).
        ...['--proc-title-template', '{title} {listen-addr} {server-mode} scale-testkit'],
        ...args,
      ],
      logFile: join(dir, `redis-${port}.log`),
    })
  }

  /** `redis://127.0.0.1:<port>` */
  get url(): string {
    return `redis://${this.host}:${this.port}`
  }

  get pid(): number | undefined {
    return this.#process.pid
  }

  get running(): boolean {
    return this.#process.running
  }

  /** Starts the server and waits until it answers PING. */
  async start(): Promise<void> {
    this.#process.start()
    await this.#process.waitUntilAnswering(
      `redis-server on port ${this.port}`,
      async () => (await this.command('ping')) === 'PONG',
    )
  }

  /** SHUTDOWN-like stop (SIGTERM). */
  async stop(): Promise<void> {
    await this.#process.stop('SIGTERM')
  }

  /** kill -9: a crash. */
  async kill(): Promise<void> {
    await this.#process.kill()
  }

  async restart(): Promise<void> {
    await this.stop()
    await this.start()
  }

  /** SIGSTOP: connections stay open and nothing answers (a hung server). */
  pause(): void {
    this.#process.pause()
  }

  resume(): void {
    this.#process.resume()
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

  /** @internal removes the dir when the server owns it (a cluster removes its own). */
  async dispose(): Promise<void> {
    await this.stop()
    if (this.#ownsDir) await removeTempDir(this.dir)
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose()
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
  const server = new RedisServer(await freePort(), dir, options.args ?? [], true)
  try {
    await server.start()
  } catch (error) {
    await server.kill()
    await removeTempDir(dir)
    throw error
  }
  return server
}
