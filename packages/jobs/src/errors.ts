import { ScaleError, type ScaleErrorOptions } from '@scale/observability'

/** Every code an error of this package carries; stable, safe to switch on. */
export type JobsErrorCode =
  | 'E_JOBS_INVALID_OPTIONS'
  | 'E_JOBS_CLOSED'
  | 'E_JOBS_CLOSE_TIMEOUT'
  | 'E_JOBS_INVALID_PAYLOAD'
  | 'E_JOBS_PERMANENT'
  | 'E_JOBS_UNKNOWN_JOB'
  | 'E_JOBS_UNSUPPORTED_VERSION'
  | 'E_JOBS_MISSING_MIGRATION'
  | 'E_JOBS_ENQUEUE_FAILED'
  | 'E_JOBS_ENQUEUE_TIMEOUT'
  | 'E_JOBS_TIMEOUT'
  | 'E_JOBS_CANCELLED'
  | 'E_JOBS_DEAD_LETTER_NOT_FOUND'
  | 'E_JOBS_SHUTDOWN_DEADLINE'
  | 'E_JOBS_OUTBOX_RELAY'

/** Every error this package throws extends `JobsError` and carries a stable `code` and a `context`. */
export class JobsError extends ScaleError<JobsErrorCode> {
  constructor(code: JobsErrorCode, message: string, options: ScaleErrorOptions = {}) {
    super('@scale/jobs', code, message, options)
  }
}

/**
 * An option cannot work (or options cannot work together, e.g. a Redis Cluster with a key prefix
 * lacking a hash tag). Thrown by the factory; for per-call options (`enqueue`, `schedule`,
 * `redrive`) by that call, before anything is written. `context.option` names the option.
 */
export class JobsOptionsError extends JobsError {
  constructor(option: string, message: string, options: { cause?: unknown } = {}) {
    super('E_JOBS_INVALID_OPTIONS', message, { ...options, context: { option } })
  }
}

/**
 * @deprecated use JobsOptionsError; removed in the next minor
 */
export const InvalidOptionsError = JobsOptionsError
/** @deprecated use JobsOptionsError; removed in the next minor */
export type InvalidOptionsError = JobsOptionsError

/**
 * A method of a producer, outbox relay or worker was called after `close()` (its queues are
 * closed: a call now would open new ones that nothing closes). `context.method` names the method.
 */
export class JobsClosedError extends JobsError {
  constructor(what: string, method: string) {
    super('E_JOBS_CLOSED', `${what}.${method}() was called after close(); create a new one`, {
      context: { method },
    })
  }
}

/** One problem found by the schema: the dotted path of the field and the validator's message. */
export interface PayloadIssue {
  /** Dotted path of the offending field, `''` for the payload itself. */
  readonly path: string
  readonly message: string
}

/**
 * The payload does not match the job's schema. Thrown by `enqueue` (nothing is written), and
 * recorded as the dead-letter reason when a stored payload fails the check before its handler runs
 * (such a job is never retried: the same bytes would fail again).
 */
export class InvalidPayloadError extends JobsError {
  readonly jobName: string
  readonly phase: 'enqueue' | 'run'
  readonly issues: readonly PayloadIssue[]
  /** Paths of the fields that failed, e.g. `['width', 'owner.email']`. */
  readonly fields: readonly string[]
  constructor(jobName: string, phase: 'enqueue' | 'run', issues: readonly PayloadIssue[]) {
    const detail = issues.map((i) => `${i.path === '' ? '(payload)' : i.path}: ${i.message}`).join('; ')
    const hint =
      phase === 'enqueue'
        ? 'fix the payload before enqueueing; nothing was enqueued'
        : 'the stored payload no longer matches the schema (an older producer?); add a migration for its version, then redrive it from the dead-letter queue'
    super('E_JOBS_INVALID_PAYLOAD', `invalid payload for job "${jobName}" at ${phase}: ${detail} — ${hint}`, {
      context: { jobName, phase, fields: issues.map((i) => i.path) },
    })
    this.jobName = jobName
    this.phase = phase
    this.issues = issues
    this.fields = issues.map((i) => i.path)
  }
}

/**
 * Throw it from a handler when retrying cannot help (a deleted record, a refused card): the job
 * goes to the dead-letter queue at once, without using its remaining attempts.
 *
 * @example
 * ```ts
 * if (!user) throw new PermanentError(`user ${payload.userId} no longer exists`)
 * ```
 */
export class PermanentError extends JobsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_JOBS_PERMANENT', message, options)
  }
}

/** A worker received a job whose name none of its definitions has. Dead-lettered without retries. */
export class UnknownJobError extends JobsError {
  readonly jobName: string
  readonly queue: string
  constructor(jobName: string, queue: string) {
    super(
      'E_JOBS_UNKNOWN_JOB',
      `no job definition named "${jobName}" in the worker for queue "${queue}"; pass its definition in createWorker({ jobs }) and redrive it`,
      { context: { jobName, queue } },
    )
    this.jobName = jobName
    this.queue = queue
  }
}

/**
 * A job was written by a newer producer than this worker knows (payload version above the
 * definition's). It is retried with backoff, on the expectation that newer workers are rolling out.
 */
export class UnsupportedVersionError extends JobsError {
  readonly jobName: string
  readonly version: number
  readonly supported: number
  constructor(jobName: string, version: number, supported: number) {
    super(
      'E_JOBS_UNSUPPORTED_VERSION',
      `job "${jobName}" has payload version ${version} but this worker knows up to ${supported}; deploy workers before producers`,
      { context: { jobName, version, supported } },
    )
    this.jobName = jobName
    this.version = version
    this.supported = supported
  }
}

/** A payload of an old version has no migration to the next one. Dead-lettered without retries. */
export class MissingMigrationError extends JobsError {
  readonly jobName: string
  readonly fromVersion: number
  constructor(jobName: string, fromVersion: number) {
    super(
      'E_JOBS_MISSING_MIGRATION',
      `job "${jobName}" has payload version ${fromVersion} and no migration from it; add migrations[${fromVersion}] to its definition`,
      { context: { jobName, fromVersion } },
    )
    this.jobName = jobName
    this.fromVersion = fromVersion
  }
}

/** Redis refused or failed an enqueue; the job may not exist. Safe to retry with the same idempotency key. */
export class EnqueueError extends JobsError {
  readonly jobName: string
  readonly queue: string
  constructor(jobName: string, queue: string, cause: unknown) {
    super(
      'E_JOBS_ENQUEUE_FAILED',
      `could not enqueue job "${jobName}" on queue "${queue}": ${errorMessage(cause)}; retry (with an idempotency key to avoid a duplicate)`,
      { cause, context: { jobName, queue } },
    )
    this.jobName = jobName
    this.queue = queue
  }
}

/**
 * Redis did not answer an enqueue within `enqueueTimeoutMs` (down, frozen, or unreachable). The
 * caller gets this instead of a promise that never settles; a web request can answer 503 at once.
 * The add may still reach Redis when it answers again: retry with the same idempotency key.
 */
export class EnqueueTimeoutError extends JobsError {
  readonly jobName: string
  readonly queue: string
  readonly timeoutMs: number
  constructor(jobName: string, queue: string, timeoutMs: number) {
    super(
      'E_JOBS_ENQUEUE_TIMEOUT',
      `Redis did not confirm job "${jobName}" on queue "${queue}" within ${timeoutMs} ms (down or frozen?); it may still be added once Redis answers: retry with the same idempotency key, or raise enqueueTimeoutMs`,
      { context: { jobName, queue, timeoutMs } },
    )
    this.jobName = jobName
    this.queue = queue
    this.timeoutMs = timeoutMs
  }
}

/**
 * A run took longer than its job's `timeoutMs`: the handler's `signal` is aborted with this error
 * and the attempt fails with it (retried like any other failure while attempts remain).
 */
export class JobTimeoutError extends JobsError {
  readonly jobId: string
  readonly timeoutMs: number
  constructor(jobId: string, timeoutMs: number) {
    super(
      'E_JOBS_TIMEOUT',
      `job ${jobId} ran longer than its ${timeoutMs} ms timeout; the attempt failed (its signal was aborted). Raise timeoutMs or make the handler honour its signal`,
      { context: { jobId, timeoutMs } },
    )
    this.jobId = jobId
    this.timeoutMs = timeoutMs
  }
}

/**
 * The job was cancelled by `producer.cancel()` while it ran: the handler's `signal` is aborted
 * with this error and the job fails without retries (and is not dead-lettered: you asked for it).
 */
export class JobCancelledError extends JobsError {
  readonly jobId: string
  constructor(jobId: string, reason: string | undefined) {
    super('E_JOBS_CANCELLED', `job ${jobId} was cancelled${reason ? `: ${reason}` : ''}`, {
      context: { jobId, reason },
    })
    this.jobId = jobId
  }
}

/** `inspect` named a dead-letter entry that does not exist (or was already redriven or removed). */
export class DeadLetterNotFoundError extends JobsError {
  readonly queue: string
  readonly id: string
  constructor(queue: string, id: string) {
    super(
      'E_JOBS_DEAD_LETTER_NOT_FOUND',
      `no dead-letter entry "${id}" for queue "${queue}"; list() shows what is there`,
      { context: { queue, id } },
    )
    this.queue = queue
    this.id = id
  }
}

/**
 * The reason recorded for a job handed back to the queue because the worker's shutdown deadline
 * passed while it ran. Its handler's `signal` is aborted with this error.
 */
export class ShutdownDeadlineError extends JobsError {
  readonly jobId: string
  constructor(jobId: string, deadlineMs: number) {
    super(
      'E_JOBS_SHUTDOWN_DEADLINE',
      `job ${jobId} was still running when the ${deadlineMs} ms shutdown deadline passed; it was returned to the queue and will run again`,
      { context: { jobId, deadlineMs } },
    )
    this.jobId = jobId
  }
}

/** The outbox relay could not move a batch; the rows stay in the outbox and are retried. */
export class OutboxRelayError extends JobsError {
  constructor(cause: unknown) {
    super(
      'E_JOBS_OUTBOX_RELAY',
      `outbox relay batch failed: ${errorMessage(cause)}; rows stay in the outbox and are retried`,
      { cause },
    )
  }
}

/** @internal */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
