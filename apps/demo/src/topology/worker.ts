import { type ChildProcess, fork } from 'node:child_process'
import { openSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { WorkerConfigInput } from '../app/worker-config.js'

const ENTRY = fileURLToPath(new URL('../app/worker-process.ts', import.meta.url))
const TSX = import.meta.resolve('tsx')

/**
 * One photo worker (stage 9) as a child process, started and killed like a web server. It has an
 * IPC channel to the runner and exits when it closes, so none is left behind.
 */
export class WorkerProcess {
  readonly name: string
  readonly #config: WorkerConfigInput & { name: string }
  readonly #logFile: string
  #child: ChildProcess | undefined
  #metricsPort = 0

  constructor(config: WorkerConfigInput & { name: string }, logDir: string) {
    this.name = config.name
    this.#config = config
    this.#logFile = join(logDir, `${config.name}.log`)
  }

  /** Where its Prometheus `/metrics` is. */
  get metricsUrl(): string {
    return `http://127.0.0.1:${this.#metricsPort}/metrics`
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null
  }

  /** Forks the worker; resolves once it takes jobs and serves its metrics. */
  async start(): Promise<void> {
    const log = openSync(this.#logFile, 'a')
    const child = fork(ENTRY, [], {
      execArgv: ['--import', TSX],
      env: { ...process.env, DEMO_WORKER_CONFIG: JSON.stringify(this.#config) },
      stdio: ['ignore', log, log, 'ipc'],
    })
    this.#child = child
    this.#metricsPort = await new Promise<number>((resolve, reject) => {
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

  /** SIGKILL: jobs in flight die with it and come back through BullMQ's stalled-job check. */
  async kill(): Promise<void> {
    await this.#end('SIGKILL')
  }

  /** SIGTERM: jobs in flight finish or go back to the queue. */
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
}
