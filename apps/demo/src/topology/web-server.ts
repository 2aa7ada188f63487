import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AppConfigInput } from '../app/config.js'
import { endChild, forkUntilListening, isRunning } from './child-process.js'

const ENTRY = fileURLToPath(new URL('../app/web-process.ts', import.meta.url))

/** Counters a web server reports on GET /_demo/stats. */
export interface WebStats {
  server: string
  db: {
    byNode: Record<string, { queries: number; errors: number }>
    byReason: Record<string, number>
    primary: string
  }
  cache: Record<string, number | string> | null
  userLoads: number
  photoLoads: number
}

/**
 * One web server of the app as a child process (`node --import tsx web-process.ts`). It has an IPC
 * channel to this process and exits when it closes, so even a SIGKILLed runner leaves none behind.
 */
export class WebServer {
  readonly name: string
  readonly #config: object
  readonly #logFile: string
  readonly #entry: string
  #child: ChildProcess | undefined
  #port = 0

  /** `entry`: another web process with the same protocol (stage 11's sharded one); its own config shape. */
  constructor(config: (AppConfigInput | object) & { name: string }, logDir: string, entry = ENTRY) {
    this.name = config.name
    this.#config = config
    this.#entry = entry
    this.#logFile = join(logDir, `${config.name}.log`)
  }

  get port(): number {
    return this.#port
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`
  }

  get pid(): number | undefined {
    return this.#child?.pid
  }

  get running(): boolean {
    return isRunning(this.#child)
  }

  /** Forks the process and resolves with its port once it listens (the same port again after a kill). */
  async start(): Promise<void> {
    const env = { DEMO_APP_CONFIG: JSON.stringify({ ...this.#config, port: this.#port }) }
    const { child, port } = forkUntilListening(this.name, this.#entry, env, this.#logFile)
    this.#child = child
    this.#port = await port
  }

  /** SIGKILL: the crash a drill wants; in-flight requests die with it. */
  async kill(): Promise<void> {
    await this.#end('SIGKILL')
  }

  /** SIGTERM: graceful (Fastify closes, pools end). */
  async stop(): Promise<void> {
    await this.#end('SIGTERM')
  }

  #end(signal: NodeJS.Signals): Promise<void> {
    return endChild(this.#child, signal)
  }

  async stats(): Promise<WebStats> {
    const response = await fetch(`${this.url}/_demo/stats`, { signal: AbortSignal.timeout(5_000) })
    return (await response.json()) as WebStats
  }
}
