import type { KeyPrefixOptions, RedisConnection } from './connection.js'
import type { DeadLetterEntry } from './dead-letter-store.js'
import type { AnyJobDefinition } from './define-job.js'

/** Selects dead-letter entries; every given field must match. */
export interface DeadLetterFilter {
  /** Only these entry IDs. */
  ids?: readonly string[]
  /** Only this job name. */
  name?: string
  /** Reason contains this text, or matches this expression. */
  reason?: string | RegExp
  /** Error code, e.g. `'E_JOBS_INVALID_PAYLOAD'`. */
  errorCode?: string
  /** Failed at or after this time. */
  since?: Date | number
  /** Failed before this time. */
  until?: Date | number
  /** Any other test. */
  where?: (entry: DeadLetterEntry) => boolean
}

export interface ListDeadLettersOptions {
  filter?: DeadLetterFilter
  /** Skip this many matches. @default 0 */
  offset?: number
  /** Return at most this many. @default 100 */
  limit?: number
}

export interface RedriveOptions {
  filter?: DeadLetterFilter
  /**
   * Redrive at most this many entries.
   * @default Infinity
   */
  limit?: number
  /**
   * Enqueue at most this many jobs per second, so a redrive of thousands does not flood the
   * workers or the service they call (the reason they failed may be an overloaded dependency).
   * @default 50
   */
  ratePerSecond?: number
  /**
   * Replaces the payload before it is enqueued again (e.g. to fix what made it invalid). Its output
   * is read as a payload of the entry's version and checked as the worker will check it (JSON,
   * migrations, the job's schema), so the dead-letter queue needs the job's definition (`jobs`).
   * An output that fails is not enqueued: the entry stays and is listed in `rejected`.
   * @default the stored payload
   */
  transform?: (entry: DeadLetterEntry) => unknown
}

export interface RedriveResult {
  /** Entries moved back to their queue, with the new job's ID. */
  readonly redriven: ReadonlyArray<{ readonly entryId: string; readonly jobId: string }>
  /**
   * Entries left in the dead-letter queue because their payload (the transform's output, or the
   * stored one when a definition is known) would fail again: `InvalidPayloadError`, or what the
   * transform or a migration threw.
   */
  readonly rejected: ReadonlyArray<{ readonly entryId: string; readonly error: Error }>
}

/** The dead-letter queue of one BullMQ queue: jobs that failed for good, kept with payload and reason. */
export interface DeadLetterQueue {
  readonly queue: string
  count(): Promise<number>
  /** Entries oldest first. */
  list(options?: ListDeadLettersOptions): Promise<DeadLetterEntry[]>
  /** One entry; throws `DeadLetterNotFoundError`. */
  inspect(id: string): Promise<DeadLetterEntry>
  /**
   * Enqueues matching entries again as new jobs with a fresh retry budget and the job's retention,
   * then removes them from the dead-letter queue. The new job's ID is derived from the entry
   * (`<id>-r<failedAt>`), so a redrive interrupted between the two steps and run again does not
   * make a second job. Throws `JobsOptionsError` for a `ratePerSecond` that is not above 0.
   */
  redrive(options?: RedriveOptions): Promise<RedriveResult>
  /** Deletes one entry; returns whether it existed. */
  remove(id: string): Promise<boolean>
  /** Deletes matching entries (all when no filter); returns how many. */
  purge(filter?: DeadLetterFilter): Promise<number>
  /** Closes its BullMQ queue and the Redis client it created, if any (bounded, idempotent); later calls throw `JobsClosedError`. */
  close(): Promise<void>
}

export interface CreateDeadLetterQueueOptions extends KeyPrefixOptions {
  connection: RedisConnection
  /** The BullMQ queue whose dead letters to manage. */
  queue: string
  /**
   * Definitions of the queue's jobs: redrive checks each payload against its job's schema before
   * enqueueing it (required for a `transform`).
   * @default []
   */
  jobs?: readonly AnyJobDefinition[]
}
