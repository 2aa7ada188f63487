import { createHash } from 'node:crypto'
import type { JobsOptions } from 'bullmq'
import type { AnyJobDefinition } from './define-job.js'
import { JobsOptionsError } from './errors.js'

/** BullMQ backoff type whose delays the worker computes from the definition's retry policy. */
export const BACKOFF_TYPE = 'scale-jobs'

/** Per-enqueue options. */
export interface EnqueueOptions {
  /**
   * Enqueueing twice with the same key (for the same job name) makes one job: the key becomes the
   * BullMQ job ID, and BullMQ ignores an add whose ID exists. Holds while the first job is kept
   * (queued, running, or within `removeOnComplete`).
   */
  idempotencyKey?: string
  /**
   * Run no earlier than this many ms from now.
   * @default 0
   */
  delayMs?: number
  /**
   * BullMQ priority among **prioritized** jobs: 1 runs first, larger numbers later. A job without a
   * priority (or `0`) runs before every prioritized job (BullMQ's rule: priorities order a
   * separate set that is served after the plain queue). To make some jobs urgent, give every job
   * of the queue a priority (e.g. urgent 1, normal 10).
   * @default undefined (no priority: ahead of all prioritized jobs)
   */
  priority?: number
  /**
   * Take from the head of the queue (last in, first out).
   * @default false
   */
  lifo?: boolean
}

/**
 * @internal The BullMQ job ID of `key` for job `name`: one ID per (name, key), never another's.
 * BullMQ refuses IDs with ':' or that parse as integers; the prefix and the hash avoid both. Names
 * and plain keys hold only `A-Za-z0-9_.-`, so '=' separates them unambiguously (with '-', `user` +
 * `deleted-42` and `user-deleted` + `42` were one ID), and another prefix marks a hashed key (a
 * plain key of 40 hex digits was the hashed ID of another key).
 */
export function idempotentJobId(name: string, key: string): string {
  if (/^[A-Za-z0-9_.-]{1,100}$/.test(key)) return `k=${name}=${key}`
  return `h=${name}=${createHash('sha256').update(key).digest('hex').slice(0, 40)}`
}

/** BullMQ's highest priority number (it refuses larger ones). */
const PRIORITY_LIMIT = 2 ** 21 - 1

/**
 * @internal Refuses options BullMQ would refuse at add time. The outbox needs this most: a row it
 * cannot add would fail every relay batch it is in, and stall the whole outbox behind it.
 */
function checkEnqueueOptions(job: AnyJobDefinition, options: EnqueueOptions): void {
  // Checked here, not left to a property read: a JavaScript caller may pass anything.
  if (typeof options !== 'object' || options === null) {
    throw new JobsOptionsError(
      'options',
      `job "${job.name}": enqueue options must be an object, got ${String(options)}`,
    )
  }
  const { priority, delayMs, idempotencyKey } = options
  if (idempotencyKey !== undefined && (typeof idempotencyKey !== 'string' || idempotencyKey === '')) {
    throw new JobsOptionsError(
      'idempotencyKey',
      `job "${job.name}": idempotencyKey must be a non-empty string, got ${typeof idempotencyKey === 'string' ? 'an empty string' : typeof idempotencyKey}`,
    )
  }
  if (
    priority !== undefined &&
    !(Number.isInteger(priority) && priority >= 0 && priority <= PRIORITY_LIMIT)
  ) {
    throw new JobsOptionsError(
      'priority',
      `job "${job.name}": priority must be an integer from 0 to ${PRIORITY_LIMIT}, got ${priority}`,
    )
  }
  if (delayMs !== undefined && !(Number.isFinite(delayMs) && delayMs >= 0)) {
    throw new JobsOptionsError(
      'delayMs',
      `job "${job.name}": delayMs must be a finite number >= 0, got ${delayMs}`,
    )
  }
}

/**
 * @internal BullMQ add options for a job of `job` with the caller's options; throws
 * `JobsOptionsError` for options BullMQ would refuse.
 */
export function bullJobOptions(
  job: AnyJobDefinition,
  options: EnqueueOptions = {},
  jobId?: string,
): JobsOptions {
  checkEnqueueOptions(job, options)
  const opts: JobsOptions = {
    attempts: job.retry.attempts,
    backoff: { type: BACKOFF_TYPE },
    removeOnComplete: job.removeOnComplete,
    removeOnFail: job.removeOnFail,
  }
  const id = options.idempotencyKey !== undefined ? idempotentJobId(job.name, options.idempotencyKey) : jobId
  if (id !== undefined) opts.jobId = id
  if (options.delayMs !== undefined && options.delayMs > 0) opts.delay = Math.round(options.delayMs)
  if (options.priority !== undefined) opts.priority = options.priority
  if (options.lifo) opts.lifo = true
  return opts
}
