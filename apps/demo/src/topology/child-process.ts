import { type ChildProcess, fork } from 'node:child_process'
import { openSync } from 'node:fs'

// Resolved here, not from the child's cwd: --import resolves bare names against the cwd.
const TSX = import.meta.resolve('tsx')

/**
 * Forks a demo process (`node --import tsx <entry>`) with its output in `logFile` and an IPC channel
 * to the runner; `port` resolves with the port it reports in its first message (`listening`). The
 * channel is also how the child knows the runner is gone: it exits when it closes.
 */
export function forkUntilListening(
  name: string,
  entry: string,
  env: NodeJS.ProcessEnv,
  logFile: string,
): { child: ChildProcess; port: Promise<number> } {
  const log = openSync(logFile, 'a')
  const child = fork(entry, [], {
    execArgv: ['--import', TSX],
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log, 'ipc'],
  })
  const port = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start within 60 s (see ${logFile})`)),
      60_000,
    )
    child.once('message', (message: { type?: string; port?: number }) => {
      clearTimeout(timer)
      if (message.type === 'listening' && message.port) resolve(message.port)
      else reject(new Error(`${name} sent an unexpected first message`))
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited during start (${signal ?? code}); see ${logFile}`))
    })
  })
  return { child, port }
}

/** True while the child has neither exited nor been killed. */
export function isRunning(child: ChildProcess | undefined): child is ChildProcess {
  return child !== undefined && child.exitCode === null && child.signalCode === null
}

/** Sends `signal` and resolves once the child has exited. */
export async function endChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!isRunning(child)) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill(signal)
  await exited
}
