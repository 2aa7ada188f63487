import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs'
import { ServerStartError, TestkitError } from './errors.js'
import { forgetProcessGroup, watchProcessGroup } from './reaper.js'
import { waitFor } from './wait.js'

export interface ServerProcessOptions {
  command: string
  args: string[]
  /** stdout and stderr are appended here. */
  logFile: string
  /** Run as this user (the kit runs Postgres unprivileged when the tests run as root). */
  uid?: number | undefined
  gid?: number | undefined
  env?: NodeJS.ProcessEnv
}

/**
 * One long-running server process (postgres, redis-server) in a process group of its own, so
 * kill, pause and resume reach its children too (a postmaster's backends, walreceiver, …), and
 * registered with the reaper so it dies with the test process.
 */
export class ServerProcess {
  readonly #options: ServerProcessOptions
  #child: ChildProcess | undefined
  #exited: Promise<void> = Promise.resolve()

  constructor(options: ServerProcessOptions) {
    this.#options = options
  }

  get pid(): number | undefined {
    return this.#child?.pid
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null
  }

  /** The last `bytes` of the server's log, for errors that must say why it failed. */
  logTail(bytes = 4_000): string {
    try {
      const size = statSync(this.#options.logFile).size
      const length = Math.min(bytes, size)
      const buffer = Buffer.alloc(length)
      const fd = openSync(this.#options.logFile, 'r')
      try {
        readSync(fd, buffer, 0, length, size - length)
      } finally {
        closeSync(fd)
      }
      return buffer.toString('utf8')
    } catch {
      return '(no log)'
    }
  }

  /**
   * Polls `check` until the server answers; gives up at once if the process exits meanwhile, and
   * fails with the tail of the server's log either way.
   */
  async waitUntilAnswering(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    try {
      await waitFor(`${what} to answer`, check, { timeoutMs, giveUpIf: () => !this.running })
    } catch (error) {
      throw new ServerStartError(what, this.logTail(), { cause: error })
    }
  }

  start(): void {
    if (this.running) throw new TestkitError('E_TESTKIT_STATE', `${this.#options.command} is already running`)
    const log = openSync(this.#options.logFile, 'a')
    const child = spawn(this.#options.command, this.#options.args, {
      detached: true,
      stdio: ['ignore', log, log],
      uid: this.#options.uid,
      gid: this.#options.gid,
      env: this.#options.env ?? process.env,
    })
    closeSync(log)
    const pid = child.pid
    if (pid === undefined)
      throw new TestkitError('E_TESTKIT_SPAWN', `could not spawn ${this.#options.command}`)
    watchProcessGroup(pid)
    child.unref()
    this.#child = child
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => {
        forgetProcessGroup(pid)
        resolve()
      })
      child.once('error', () => resolve())
    })
  }

  /**
   * Sends `signal` to the server and every process under it. Its group alone is not enough:
   * postgres backends call setsid(), so each sits in a group of its own.
   */
  signal(signal: NodeJS.Signals): void {
    const pid = this.#child?.pid
    if (pid === undefined || !this.running) return
    for (const target of [-pid, ...descendantsOf(pid)]) {
      try {
        process.kill(target, signal)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
      }
    }
  }

  /**
   * A polite signal goes to the server process alone, which shuts its children down its own way.
   * Sent to every process it would mean something else: SIGINT to a postgres backend cancels its
   * statement (57014) instead of the fast shutdown's "terminating connection" (57P01).
   */
  #signalLeader(signal: NodeJS.Signals): void {
    const pid = this.#child?.pid
    if (pid === undefined || !this.running) return
    try {
      process.kill(pid, signal)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
    }
  }

  /** Sends `signal` and resolves once the process has exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.running) return this.#exited
    // Unref'd while it runs (a forgotten server must not keep a script alive forever), but we
    // must stay alive to see it exit.
    this.#child?.ref()
    // A stopped (SIGSTOPped) process cannot act on a polite signal.
    this.signal('SIGCONT')
    if (signal === 'SIGKILL') this.signal(signal)
    else this.#signalLeader(signal)
    await this.#exited
  }

  /** SIGKILL to the server and everything under it at once: the crash a test wants to survive. */
  async kill(): Promise<void> {
    const pid = this.#child?.pid
    if (pid === undefined || !this.running) return this.#exited
    // Listed before the kill: once the leader is gone, its children are reparented to PID 1.
    const family = [pid, ...descendantsOf(pid)]
    await this.stop('SIGKILL')
    await waitFor('the killed server and its children to exit', () => !family.some(isLive))
  }

  pause(): void {
    this.signal('SIGSTOP')
  }

  resume(): void {
    this.signal('SIGCONT')
  }
}

interface ProcStat {
  pid: number
  state: string
  ppid: number
}

/** Every process's state and parent, from /proc (Linux; elsewhere an empty list). */
function readProcTable(): ProcStat[] {
  if (!existsSync('/proc/self/stat')) return []
  const table: ProcStat[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // Fields after the ")" that closes the command name: state ppid pgrp ...
      const [state = '', ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      table.push({ pid: Number(entry), state, ppid: Number(ppid) })
    } catch {} // the process exited while we looked
  }
  return table
}

/** The pids of all processes below `root` (children, their children, …). */
function descendantsOf(root: number): number[] {
  const table = readProcTable()
  const found: number[] = []
  let frontier = [root]
  while (frontier.length > 0) {
    const children = table.filter((p) => frontier.includes(p.ppid)).map((p) => p.pid)
    found.push(...children)
    frontier = children
  }
  return found
}

/**
 * Whether `pid` is a running process. Killed postgres backends are reparented to PID 1, which in
 * some containers reaps them late; a zombie holds no port and no shared memory, so it counts as gone.
 */
function isLive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return true // not Linux: kill(pid, 0) succeeding is all we know
  }
}
