import { type Job, UnrecoverableError, WaitingError } from 'bullmq'
import type { Cluster, Redis } from 'ioredis'
import { retryDelayMs } from './backoff.js'
import { type DeadLetterEntry, writeDeadLetter } from './dead-letter-store.js'
import { parseJobName } from './define-job.js'
import {
  InvalidPayloadError,
  JobCancelledError,
  JobTimeoutError,
  MissingMigrationError,
  PermanentError,
  UnknownJobError,
} from './errors.js'
import { abortFlight, type Flight, HandlerContext, newFlight } from './handler-context.js'
import { BACKOFF_TYPE } from './job-options.js'
import type { Logger } from './logger.js'
import type { Metrics } from './metrics.js'
import type { TolerantWorker } from './tolerant-worker.js'
import { migratePayload, validatePayload } from './validate-payload.js'
import type { WorkerDefinitions } from './worker-definitions.js'
import type { WorkerEvent } from './worker-options.js'
import type { WorkerStats } from './worker-stats.js'

const RETURNED = Symbol('returned')

/** Any string `code` (ours, Node's `ETIMEDOUT`, a driver's), so dead letters can be filtered by it. */
function errorCode(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined
  return typeof code === 'string' ? code : undefined
}

/** Failures that retrying cannot fix: the job is dead-lettered at once. */
function isPermanent(error: unknown): boolean {
  return (
    error instanceof PermanentError ||
    error instanceof InvalidPayloadError ||
    error instanceof UnknownJobError ||
    error instanceof MissingMigrationError ||
    error instanceof JobCancelledError ||
    error instanceof UnrecoverableError ||
    (error instanceof Error && error.name === 'UnrecoverableError')
  )
}

/** @internal What a {@link JobRunner} works with; all owned by the worker. */
export interface JobRunnerParts {
  readonly definitions: WorkerDefinitions
  /** Client for dead letters. */
  readonly client: Redis | Cluster
  readonly keyPrefix: string
  readonly deadLetter: boolean
  readonly logger: Logger
  readonly metrics: Metrics
  readonly stats: WorkerStats
  /** Reports a worker event (never throws). */
  readonly emit: (event: WorkerEvent) => void
  /** Whether anyone listens to the hot-path events (`completed`, `returned`). */
  readonly listening: boolean
}

/**
 * @internal Runs one job at a time per call of {@link run}: resolves and validates its payload,
 * calls the handler under its timeout, and classifies how it ended (completed, handed back,
 * retried, cancelled, dead-lettered).
 */
export class JobRunner {
  /** The jobs running now. */
  readonly flights = new Set<Flight>()
  readonly #parts: JobRunnerParts
  #finished = 0

  constructor(parts: JobRunnerParts) {
    this.#parts = parts
  }

  /** Jobs this runner has finished (completed or failed) so far. */
  get finished(): number {
    return this.#finished
  }

  /** BullMQ's `backoffStrategy`: the job's own retry delay, reported as `retry-scheduled`. */
  backoff(
    queue: string,
    attemptsMade: number,
    type: string | undefined,
    job: { id?: string | undefined; name: string } | undefined,
  ): number {
    if (type !== BACKOFF_TYPE || !job) return 0
    const definition = this.#parts.definitions.get(queue, parseJobName(job.name).name)
    if (!definition) return 0
    const delayMs = retryDelayMs(definition.retry, attemptsMade)
    this.#parts.emit({
      type: 'retry-scheduled',
      queue,
      jobId: String(job.id),
      name: definition.name,
      attempt: attemptsMade,
      delayMs,
    })
    return delayMs
  }

  /** BullMQ's processor for `queue`. */
  async run(worker: TolerantWorker, queue: string, job: Job, token: string | undefined): Promise<unknown> {
    const { emit, listening } = this.#parts
    const started = performance.now()
    const flight = newFlight(job)
    let timeout: NodeJS.Timeout | undefined
    this.flights.add(flight)
    const resolved = this.#parts.definitions.resolve(queue, job.name)
    const { name, version, definition } = resolved
    try {
      if (!definition) throw new UnknownJobError(name, queue)
      const unparsable = worker.unparsableData(job)
      if (unparsable !== undefined) {
        throw new InvalidPayloadError(name, 'run', [{ path: '', message: 'stored data is not valid JSON' }])
      }
      const migrated =
        version === definition.version ? job.data : migratePayload(definition, version, job.data)
      let payload = definition.validate ? validatePayload(definition, migrated, 'run') : migrated
      if (payload instanceof Promise) payload = await payload
      const context = new HandlerContext(flight, queue, resolved)
      let outcome: unknown = RETURNED
      // Handed back while an async validator ran: do not start the handler at all.
      if (flight.abortReason instanceof JobCancelledError) throw flight.abortReason
      if (!flight.handedBack) {
        flight.stage = 'running'
        if (definition.timeoutMs !== undefined) timeout = this.#startTimeout(flight, definition.timeoutMs)
        outcome = definition.handler(payload, context)
        if (outcome instanceof Promise) {
          // One promise that settles with the handler, with RETURNED when the shutdown deadline
          // hands the job back, or with the timeout's or a cancel's error (cheaper per job than a
          // race against a shared promise, which would also keep one reaction per job alive).
          const running = outcome
          outcome = await new Promise((resolve, reject) => {
            flight.handBack = () => resolve(RETURNED)
            flight.interrupt = reject
            running.then(resolve, reject)
          })
        }
      }
      flight.stage = 'finishing'
      if (outcome === RETURNED) {
        try {
          await job.moveToWait(token)
          if (listening) emit({ type: 'returned', queue, jobId: String(job.id), name })
        } catch (moveError) {
          // The lock is gone or Redis is unreachable: the job stays active until a stalled check
          // (of any worker) puts it back, which is the same outcome, only later.
          this.#parts.logger.warn(
            { err: moveError, queue, jobId: job.id },
            '[@scale/jobs] could not return job; stalled check will',
          )
        }
        // BullMQ's own signal (not an error of ours): the job was moved by us, neither completed nor failed.
        throw new WaitingError()
      }
      if (listening) {
        emit({ type: 'completed', queue, jobId: String(job.id), name, attempt: job.attemptsMade + 1 })
      }
      this.#finish(queue, started)
      return outcome
    } catch (error) {
      if (error instanceof WaitingError) throw error
      flight.stage = 'finishing'
      const permanent = isPermanent(error)
      const final = permanent || job.attemptsMade + 1 >= (job.opts.attempts ?? 1)
      if (error instanceof JobCancelledError) {
        // Asked for: failed without retries, not a dead letter to look into.
        this.#finish(queue, started)
        emit({ type: 'cancelled', queue, jobId: String(job.id), name })
      } else if (final) {
        this.#finish(queue, started)
        await this.deadLetter(queue, job, error, permanent, worker.unparsableData(job))
      }
      if (permanent && !(error instanceof UnrecoverableError)) {
        // BullMQ skips the remaining attempts only for its own UnrecoverableError (a signal to
        // BullMQ, not an error of ours); the job's own error is its cause.
        const unrecoverable = new UnrecoverableError(error instanceof Error ? error.message : String(error))
        unrecoverable.cause = error
        throw unrecoverable
      }
      // The handler's own error, passed on to BullMQ as it was thrown.
      throw error
    } finally {
      if (timeout) clearTimeout(timeout)
      this.flights.delete(flight)
    }
  }

  /** Fails the attempt with `JobTimeoutError` (and aborts the handler's signal) after `timeoutMs`. */
  #startTimeout(flight: Flight, timeoutMs: number): NodeJS.Timeout {
    return setTimeout(() => {
      if (flight.stage !== 'running') return
      const error = new JobTimeoutError(String(flight.job.id), timeoutMs)
      abortFlight(flight, error)
      flight.interrupt?.(error)
    }, timeoutMs)
  }

  /** Aborts the job `jobId` if it runs here (see `JobWorker.cancel`). */
  cancel(jobId: string, reason?: string): boolean {
    for (const flight of this.flights) {
      if (String(flight.job.id) !== jobId || flight.stage === 'finishing') continue
      const error = new JobCancelledError(jobId, reason)
      abortFlight(flight, error)
      flight.interrupt?.(error)
      return true
    }
    return false
  }

  #finish(queue: string, started: number): void {
    const busyMs = performance.now() - started
    this.#parts.stats.record(queue, busyMs)
    const metrics = this.#parts.metrics
    if (metrics.enabled) metrics.observe('jobs_run_seconds', busyMs / 1000, { queue })
    this.#finished += 1
  }

  /** Reports the job as failed for good and copies it to the dead-letter queue (if on). `rawData` is the stored text of a job whose data is not JSON: kept as its payload. */
  async deadLetter(
    queue: string,
    job: Job,
    error: unknown,
    permanent: boolean,
    rawData?: string,
  ): Promise<void> {
    const reason = error instanceof Error ? error.message : String(error)
    const { name, version } = parseJobName(job.name)
    this.#parts.emit({ type: 'dead-lettered', queue, jobId: String(job.id), name, reason, permanent })
    if (!this.#parts.deadLetter) return
    const entry: DeadLetterEntry = {
      id: String(job.id),
      queue,
      name,
      version,
      payload: rawData ?? job.data,
      reason,
      errorName: error instanceof Error ? error.name : typeof error,
      errorCode: errorCode(error),
      stack: error instanceof Error ? error.stack : undefined,
      permanent,
      attemptsMade: job.attemptsMade + 1,
      attempts: job.opts.attempts ?? 1,
      priority: job.opts.priority,
      removeOnComplete: job.opts.removeOnComplete,
      removeOnFail: job.opts.removeOnFail,
      enqueuedAt: job.timestamp,
      failedAt: Date.now(),
    }
    try {
      await writeDeadLetter(this.#parts.client, this.#parts.keyPrefix, entry)
    } catch (writeError) {
      // The job still lands in BullMQ's failed set, so it is not lost; the log says where it is.
      this.#parts.logger.error(
        { err: writeError, queue, jobId: entry.id },
        '[@scale/jobs] could not write dead letter; job is in the failed set',
      )
    }
  }
}
