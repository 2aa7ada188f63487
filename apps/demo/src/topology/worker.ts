import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { WorkerConfigInput } from '../app/worker-config.js'
import { endChild, forkUntilListening, isRunning } from './child-process.js'

const ENTRY = fileURLToPath(new URL('../app/worker-process.ts', import.meta.url))

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
    return isRunning(this.#child)
  }

  /** Forks the worker; resolves once it takes jobs and serves its metrics. */
  async start(): Promise<void> {
    const env = { DEMO_WORKER_CONFIG: JSON.stringify(this.#config) }
    const { child, port } = forkUntilListening(this.name, ENTRY, env, this.#logFile)
    this.#child = child
    this.#metricsPort = await port
  }

  /** SIGKILL: jobs in flight die with it and come back through BullMQ's stalled-job check. */
  async kill(): Promise<void> {
    await this.#end('SIGKILL')
  }

  /** SIGTERM: jobs in flight finish or go back to the queue. */
  async stop(): Promise<void> {
    await this.#end('SIGTERM')
  }

  #end(signal: NodeJS.Signals): Promise<void> {
    return endChild(this.#child, signal)
  }
}
