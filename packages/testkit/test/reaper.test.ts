import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../src/index.js'

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('servers of a test process that dies', () => {
  it('are killed and their dirs removed when the process is SIGKILLed', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/start-and-hang.ts', import.meta.url))
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString()))
      child.once('exit', (code) => reject(new Error(`fixture exited with ${code}`)))
    })
    const { pids, dirs } = JSON.parse(line) as { pids: number[]; dirs: string[] }
    expect(pids.every(isAlive)).toBe(true)
    expect(dirs.every((dir) => existsSync(dir))).toBe(true)

    child.kill('SIGKILL')

    await waitFor('orphaned servers to be reaped', () => pids.every((pid) => !isAlive(pid) || isZombie(pid)))
    await waitFor('temp dirs to be removed', () => dirs.every((dir) => !existsSync(dir)))
  })
})

// A reaped server can linger as a zombie until PID 1 collects it; it holds nothing.
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return true
  }
}
