import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { RedisTarget } from './redis-target.js'

const script = fileURLToPath(new URL('./cache-process.ts', import.meta.url))
// `--import tsx` resolves from the working directory: use the package's, wherever the run started.
const packageDir = fileURLToPath(new URL('../..', import.meta.url))

/** Handle on a cache running in another Node process (see cache-process.ts). */
export class ChildCache {
  readonly #child: ChildProcess
  readonly #waiting = new Map<number, (message: Record<string, unknown>) => void>()
  readonly ready: Promise<void>
  #ids = 0
  stderr = ''

  constructor(config: {
    target: RedisTarget
    pgUrl?: string
    prefix: string
    leases: boolean
    options?: Record<string, unknown>
  }) {
    this.#child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(config)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: packageDir,
    })
    this.#child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString()
    })
    let markReady: () => void = () => {}
    let failReady: (error: Error) => void = () => {}
    this.ready = new Promise((resolve, reject) => {
      markReady = resolve
      failReady = reject
    })
    this.#child.on('exit', (code) => failReady(new Error(`child exited with ${code}: ${this.stderr}`)))
    const lines = createInterface({ input: this.#child.stdout as NodeJS.ReadableStream })
    lines.on('line', (line) => {
      let message: Record<string, unknown>
      try {
        message = JSON.parse(line) as Record<string, unknown>
      } catch {
        return
      }
      if (message.ready === true) markReady()
      const id = message.id as number
      this.#waiting.get(id)?.(message)
      this.#waiting.delete(id)
    })
  }

  async call(command: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = ++this.#ids
    const reply = new Promise<Record<string, unknown>>((resolve) => this.#waiting.set(id, resolve))
    this.#child.stdin?.write(`${JSON.stringify({ id, ...command })}\n`)
    const message = await reply
    if (typeof message.error === 'string') throw new Error(`child: ${message.error}`)
    return message
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null) return
    const exited = new Promise((resolve) => this.#child.once('exit', resolve))
    // The reply may be lost when the child exits right after writing it: the exit is what counts.
    await Promise.race([this.call({ op: 'close' }).catch(() => {}), exited])
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
}
