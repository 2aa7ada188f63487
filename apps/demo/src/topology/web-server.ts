import { type ChildProcess, fork } from 'node:child_process'
import { openSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AppConfigInput } from '../app/config.js'

const ENTRY = fileURLToPath(new URL('../app/web-process.ts', import.meta.url))
// Resolved here, not from the child's cwd: --import resolves bare names against the cwd.
const TSX = import.meta.resolve('tsx')

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
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null
  }

  /** Forks the process and resolves with its port once it listens (the same port again after a kill). */
  async start(): Promise<void> {
    const log = openSync(this.#logFile, 'a')
    const child = fork(this.#entry, [], {
      execArgv: ['--import', TSX],
      env: { ...process.env, DEMO_APP_CONFIG: JSON.stringify({ ...this.#config, port: this.#port }) },
      stdio: ['ignore', log, log, 'ipc'],
    })
    this.#child = child
    this.#port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name} did not start within 60 s (see ${this.#logFile})`)),
        60_000,
      )
      child.once('message', (message: { type?: string; port?: number }) => {
        clearTimeout(timer)
        if (message.type === 'listening' && message.port) resolve(message.port)
        else reject(new Error(`${this.name} sent an unexpected first message`))
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`${this.name} exited during start (${signal ?? code}); see ${this.#logFile}`))
      })
    })
  }

  /** SIGKILL: the crash a drill wants; in-flight requests die with it. */
  async kill(): Promise<void> {
    await this.#end('SIGKILL')
  }

  /** SIGTERM: graceful (Fastify closes, pools end). */
  async stop(): Promise<void> {
    await this.#end('SIGTERM')
  }

  async #end(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child
    if (!child || !this.running) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(signal)
    await exited
  }

  async stats(): Promise<WebStats> {
    const response = await fetch(`${this.url}/_demo/stats`, { signal: AbortSignal.timeout(5_000) })
    return (await response.json()) as WebStats
  }
}
