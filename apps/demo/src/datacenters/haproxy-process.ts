import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { haproxyBinary, waitFor } from '@scale/testkit'

/**
 * An HAProxy of the stage's own (the geo router, a region's failover endpoints), from a config
 * written here: started in the foreground, ready once `port` accepts connections, SIGKILLed by
 * `kill()` (a region going down) or `stop()` (teardown, which also removes its directory).
 */
export class HaproxyProcess {
  readonly #dir: string
  readonly #child: ChildProcess

  private constructor(dir: string, child: ChildProcess) {
    this.#dir = dir
    this.#child = child
  }

  static async start(name: string, config: string, port: number): Promise<HaproxyProcess> {
    const dir = mkdtempSync(join(tmpdir(), `demo-${name}-`))
    const file = join(dir, `${name}.cfg`)
    writeFileSync(file, config)
    const child = spawn(haproxyBinary(), ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] })
    child.stderr?.resume()
    const process = new HaproxyProcess(dir, child)
    try {
      await waitFor(
        `${name} to listen`,
        () =>
          new Promise<boolean>((resolve) => {
            const socket = createConnection({ host: '127.0.0.1', port }, () => {
              socket.destroy()
              resolve(true)
            })
            socket.on('error', () => resolve(false))
          }),
        { timeoutMs: 10_000 },
      )
    } catch (error) {
      await process.stop()
      throw error
    }
    return process
  }

  async kill(): Promise<void> {
    const child = this.#child
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGKILL')
    await exited
  }

  async stop(): Promise<void> {
    await this.kill()
    rmSync(this.#dir, { recursive: true, force: true })
  }
}
