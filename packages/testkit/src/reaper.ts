import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

type ReaperMessage =
  | { op: 'add-group' | 'remove-group'; pgid: number }
  | { op: 'add-dir' | 'remove-dir'; dir: string }

let reaper: ChildProcess | undefined

function send(message: ReaperMessage): void {
  if (!reaper) {
    reaper = fork(fileURLToPath(new URL('./reaper-process.mjs', import.meta.url)), [], {
      detached: true, // its own process group: a Ctrl-C to the test run must not take it down first
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      execArgv: [],
    })
    // The reaper must never keep the test process alive: it exists for when that process is gone.
    reaper.unref()
    reaper.channel?.unref()
  }
  reaper.send(message)
}

/** Registers a server's process group to be SIGKILLed if this process dies without stopping it. */
export function watchProcessGroup(pgid: number): void {
  send({ op: 'add-group', pgid })
}

export function forgetProcessGroup(pgid: number): void {
  send({ op: 'remove-group', pgid })
}

/** Registers a temp dir to be removed if this process dies without removing it. */
export function watchDir(dir: string): void {
  send({ op: 'add-dir', dir })
}

export function forgetDir(dir: string): void {
  send({ op: 'remove-dir', dir })
}
