import type { KeepJobs } from 'bullmq'
import type { Cluster, Redis } from 'ioredis'
import { queueKey } from './connection.js'

/** One job that failed for good, as kept in the dead-letter queue. */
export interface DeadLetterEntry {
  /** The failed BullMQ job's ID; the entry's key. */
  readonly id: string
  readonly queue: string
  /** Job definition name (without the version suffix). */
  readonly name: string
  /** Payload version the producer wrote. */
  readonly version: number
  /** The payload as stored in the job (before migrations). */
  readonly payload: unknown
  /** The error's message: why it failed. */
  readonly reason: string
  /** The error's class name, e.g. `InvalidPayloadError`. */
  readonly errorName: string
  /** The error's `code` when it has one, e.g. `E_JOBS_INVALID_PAYLOAD`. */
  readonly errorCode: string | undefined
  readonly stack: string | undefined
  /** True when it skipped its remaining retries (PermanentError, invalid payload, unknown job). */
  readonly permanent: boolean
  /** Runs that failed, this last one included. */
  readonly attemptsMade: number
  /** Attempts the job was allowed; a redrive gets as many again. */
  readonly attempts: number
  readonly priority: number | undefined
  /** The job's BullMQ retention, given to its redriven job (absent in entries of older versions). */
  readonly removeOnComplete?: boolean | number | KeepJobs | undefined
  readonly removeOnFail?: boolean | number | KeepJobs | undefined
  /** When the job was first enqueued (ms since epoch). */
  readonly enqueuedAt: number
  /** When it was dead-lettered (ms since epoch). */
  readonly failedAt: number
}

/** @internal key of the sorted set of entry IDs, scored by failure time. */
export function deadLetterIndexKey(prefix: string, queue: string): string {
  return queueKey(prefix, queue, 'dlq')
}

/** @internal key of the hash of entry ID to JSON. */
export function deadLetterDataKey(prefix: string, queue: string): string {
  return queueKey(prefix, queue, 'dlq-data')
}

/**
 * @internal Adds (or overwrites: a job dead-lettered twice, e.g. by a rerun after a crash, stays
 * one entry) in one MULTI; both keys share the queue's hash tag, so this works on a cluster.
 */
export async function writeDeadLetter(
  client: Redis | Cluster,
  prefix: string,
  entry: DeadLetterEntry,
): Promise<void> {
  await client
    .multi()
    .hset(deadLetterDataKey(prefix, entry.queue), entry.id, JSON.stringify(entry))
    .zadd(deadLetterIndexKey(prefix, entry.queue), entry.failedAt, entry.id)
    .exec()
}
