import { ShutdownDeadlineError } from './errors.js'
import { abortFlight } from './handler-context.js'
import type { JobRunner } from './run-job.js'
import type { TolerantWorker } from './tolerant-worker.js'
import type { ShutdownReport, WorkerEvent } from './worker-options.js'

/** @internal What a worker's shutdown stops and releases. */
export interface ShutdownParts {
  readonly runner: JobRunner
  readonly bullWorkers: readonly TolerantWorker[]
  /** Releases everything else the worker holds (signal handlers, subscriber, counters, client). */
  readonly release: () => Promise<void>
  readonly emit: (event: WorkerEvent) => void
}

/**
 * @internal Stops taking jobs, lets in-flight jobs finish until a margin before `deadlineMs`,
 * hands back those still running (their signal is aborted with `ShutdownDeadlineError`), then
 * releases the worker's connections and timers.
 */
export async function shutDownWorker(
  parts: ShutdownParts,
  signal: string | undefined,
  deadlineMs: number,
): Promise<ShutdownReport> {
  const { runner } = parts
  const started = Date.now()
  const finishedBefore = runner.finished
  const returned: string[] = []
  // Worker.close() stops fetching at once and waits for the jobs in flight; the timer hands
  // back whatever is still running shortly before the deadline (a fifth of it, at most 1 s,
  // is kept for moving the jobs back and closing) so the process is gone by the deadline.
  const handBackAt = deadlineMs - Math.min(1_000, deadlineMs / 5)
  const deadline = setTimeout(() => {
    for (const flight of runner.flights) {
      // A job already settling (completing, failing) is left to finish: it is moments away.
      if (flight.stage === 'finishing') continue
      returned.push(String(flight.job.id))
      flight.handedBack = new ShutdownDeadlineError(String(flight.job.id), deadlineMs)
      abortFlight(flight, flight.handedBack)
      flight.handBack?.()
    }
  }, handBackAt)
  try {
    await Promise.all(parts.bullWorkers.map((worker) => worker.close()))
  } finally {
    clearTimeout(deadline)
    await parts.release()
  }
  const report = { finished: runner.finished - finishedBefore, returned, elapsedMs: Date.now() - started }
  parts.emit({
    type: 'shutdown',
    signal,
    finished: report.finished,
    returned: returned.length,
    elapsedMs: report.elapsedMs,
  })
  return report
}
