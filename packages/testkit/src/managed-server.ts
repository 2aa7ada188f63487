import { ServerProcess, type ServerProcessOptions } from './server-process.js'
import { removeTempDir } from './temp-dir.js'

export interface ManagedServerConfig {
  port: number
  /** How to launch the server. */
  process: ServerProcessOptions
  /** What start errors call it, e.g. `redis-server on port 40123`. */
  what: string
  /**
   * The polite stop: SIGTERM for most servers, SIGINT for postgres (a fast shutdown that
   * disconnects clients instead of waiting for them).
   * @default 'SIGTERM'
   */
  stopSignal?: NodeJS.Signals
  /** @default 30_000 */
  readyTimeoutMs?: number
  /** A temp dir the server owns: `dispose()` removes it after the stop. */
  ownedDir?: string | undefined
}

/**
 * The lifecycle every server of the kit shares (postgres, redis-server, varnishd, haproxy): start
 * and wait until it answers, a polite stop, kill -9, SIGSTOP/SIGCONT, dispose. A subclass says how
 * to launch it and how to tell that it answers ({@link answers}); the process group handling and
 * the reaper live in {@link ServerProcess}.
 */
export abstract class ManagedServer {
  readonly host = '127.0.0.1'
  readonly port: number
  readonly #process: ServerProcess
  readonly #config: ManagedServerConfig

  protected constructor(config: ManagedServerConfig) {
    this.port = config.port
    this.#config = config
    this.#process = new ServerProcess(config.process)
  }

  /** Resolves true once the server accepts work; a throw counts as "not yet". */
  protected abstract answers(): Promise<boolean>

  get pid(): number | undefined {
    return this.#process.pid
  }

  get running(): boolean {
    return this.#process.running
  }

  /** Starts the server and waits until it answers. */
  async start(): Promise<void> {
    this.#process.start()
    await this.waitReady()
  }

  /**
   * Waits until the server answers; fails at once with the tail of its log if it exits meanwhile
   * (`ServerStartError`).
   */
  async waitReady(timeoutMs = this.#config.readyTimeoutMs ?? 30_000): Promise<void> {
    await this.#process.waitUntilAnswering(this.#config.what, () => this.answers(), timeoutMs)
  }

  /** The polite stop (SIGTERM, or postgres' fast shutdown); resolves once the process has exited. */
  async stop(): Promise<void> {
    await this.#process.stop(this.#config.stopSignal ?? 'SIGTERM')
  }

  /** kill -9 of the server and every process under it: a crash. */
  async kill(): Promise<void> {
    await this.#process.kill()
  }

  async restart(): Promise<void> {
    await this.stop()
    await this.start()
  }

  /**
   * SIGSTOP to the server and every process under it: connections stay open (the kernel even
   * accepts new ones) and nothing answers. A hung server.
   */
  pause(): void {
    this.#process.pause()
  }

  resume(): void {
    this.#process.resume()
  }

  /**
   * @internal the first start of a server the kit just made: if it fails, kills whatever is left
   * and removes the dir it owns before rethrowing, so a retry starts clean.
   */
  async startOrDiscard(): Promise<this> {
    try {
      await this.start()
    } catch (error) {
      await this.kill()
      if (this.#config.ownedDir !== undefined) await removeTempDir(this.#config.ownedDir)
      throw error
    }
    return this
  }

  /** Stops the server and removes the temp dir it owns, if any. */
  async dispose(): Promise<void> {
    await this.stop()
    if (this.#config.ownedDir !== undefined) await removeTempDir(this.#config.ownedDir)
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose()
  }
}
