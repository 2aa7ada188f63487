import { JobsOptionsError } from './errors.js'
import { type Logger, silentLogger } from './logger.js'

/** Anything with a bounded `close()`: a worker, an outbox relay, a producer. */
export interface Closable {
  close(): Promise<unknown>
}

export interface ShutdownOnSignalOptions {
  /**
   * Signals that start the shutdown.
   * @default ['SIGTERM', 'SIGINT']
   */
  signals?: readonly NodeJS.Signals[]
  /**
   * With `exitProcess`, the process exits with code 1 if closing has not finished by then (Redis
   * or Postgres unreachable). Keep it under your orchestrator's kill grace (Kubernetes: 30 s) and
   * at or above the worker's own `shutdown.deadlineMs`.
   * @default 25_000
   */
  deadlineMs?: number
  /**
   * End the process once everything is closed: `process.exit(0)`, or `1` if a `close()` failed,
   * the deadline passed, or a second signal came.
   * @default true
   */
  exitProcess?: boolean
  /** Called with the signal before the targets are closed. @default none */
  onSignal?: (signal: NodeJS.Signals) => void
  /** pino-compatible logger. @default silent */
  logger?: Logger
}

/**
 * Closes `targets` (in parallel) on SIGTERM/SIGINT, then ends the process. Nothing in this package
 * installs signal handlers or exits the process unless you call this (or give a worker
 * `shutdown.signals`): a library must not decide when its host process ends. Returns a function
 * that removes the handlers.
 *
 * @example
 * ```ts
 * const worker = createWorker({ connection, jobs: [resizeImage] })
 * const relay = createOutboxRelay({ db, connection })
 * relay.start()
 * shutdownOnSignal([worker, relay], { deadlineMs: 25_000 })
 * ```
 */
export function shutdownOnSignal(
  targets: readonly Closable[],
  options: ShutdownOnSignalOptions = {},
): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT']
  const deadlineMs = options.deadlineMs ?? 25_000
  const exitProcess = options.exitProcess ?? true
  const logger = options.logger ?? silentLogger
  if (!(deadlineMs > 0))
    throw new JobsOptionsError('deadlineMs', `deadlineMs must be above 0, got ${deadlineMs}`)
  let started = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (started) {
      // A second signal while shutting down: the operator wants out now. Jobs still running are
      // recovered by the stalled checker of another worker.
      if (exitProcess) process.exit(1)
      return
    }
    started = true
    logger.info({ signal, deadlineMs }, '[@scale/jobs] shutting down')
    try {
      options.onSignal?.(signal)
    } catch {}
    if (exitProcess) {
      // The deadline is a promise to the orchestrator: if closing has not finished by then, leave
      // anyway; jobs still marked active are recovered by other workers' stalled checks, as after
      // a SIGKILL. Unref'd so it never holds a process that is done sooner.
      setTimeout(() => process.exit(1), deadlineMs).unref()
    }
    void Promise.allSettled(targets.map((target) => target.close())).then((results) => {
      const failed = results.filter((r) => r.status === 'rejected')
      for (const failure of failed) {
        logger.error({ err: (failure as PromiseRejectedResult).reason }, '[@scale/jobs] shutdown failed')
      }
      if (exitProcess) process.exit(failed.length > 0 ? 1 : 0)
    })
  }
  for (const signal of signals) process.on(signal, onSignal)
  return () => {
    for (const signal of signals) process.off(signal, onSignal)
  }
}
