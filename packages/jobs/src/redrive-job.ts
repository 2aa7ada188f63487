/**
 * The job a redrive enqueues again for one dead-letter entry: its ID, its options and its payload,
 * checked as the worker will check it.
 */
import type { JobsOptions } from 'bullmq'
import type { DeadLetterEntry } from './dead-letter-store.js'
import type { AnyJobDefinition } from './define-job.js'
import { BACKOFF_TYPE } from './job-options.js'
import { decodedPayload, migratePayload, validatePayload } from './validate-payload.js'

/**
 * `abc` failed at T → `abc=rT`; `abc=rT` failed at U → `abc=rU`: the redriven job's ID. Stable for
 * one entry, so a redrive interrupted and run again does not make a second job; distinct for two
 * failures of one reused job ID (an idempotency key enqueued again after its first job was
 * removed), so the second redrive is not swallowed by the first one's retained job. '=' is in no
 * idempotency key, so no key's job ID is a redriven one's (with '-r', the key `x-rT` was).
 */
export function redriveJobId(entry: DeadLetterEntry): string {
  const base = /^(.*)=r\d+$/.exec(entry.id)?.[1] ?? entry.id
  return `${base}=r${entry.failedAt}`
}

/** Matches defineJob's default, for entries written before retention was recorded. */
const DEFAULT_RETENTION = { count: 10_000 }

/** A redriven job's BullMQ dedup marker outlives its removal (only if a redrive dies mid-way). */
const REDRIVE_DEDUP_TTL_MS = 86_400_000

/** The BullMQ options of the job a redrive adds for `entry`: its own attempts, retention and priority. */
export function redriveJobOptions(entry: DeadLetterEntry, jobId: string): JobsOptions {
  return {
    jobId,
    deduplication: { id: jobId, ttl: REDRIVE_DEDUP_TTL_MS },
    attempts: entry.attempts,
    backoff: { type: BACKOFF_TYPE },
    removeOnComplete: entry.removeOnComplete ?? DEFAULT_RETENTION,
    removeOnFail: entry.removeOnFail ?? DEFAULT_RETENTION,
    ...(entry.priority !== undefined && entry.priority > 0 && { priority: entry.priority }),
  }
}

/**
 * The payload to enqueue again, checked as the worker will check it: JSON round trip, then the
 * migrations from the entry's version and the schema. Without a definition (and no transform)
 * the stored payload goes back as it is, as BullMQ stored it.
 */
export async function checkedRedrivePayload(
  definitions: ReadonlyMap<string, AnyJobDefinition>,
  entry: DeadLetterEntry,
  transform: ((entry: DeadLetterEntry) => unknown) | undefined,
): Promise<unknown> {
  const payload = transform ? transform(entry) : entry.payload
  const definition = definitions.get(entry.name)
  if (!definition) return payload
  // What the worker will read; refuses what JSON cannot carry (BigInt, undefined, circular).
  const stored = decodedPayload(definition, payload)
  // Migrations may change their input in place: they get a copy, the stored value stays as is.
  const upgraded = migratePayload(definition, entry.version, decodedPayload(definition, payload))
  const checked = validatePayload(definition, upgraded, 'enqueue')
  if (checked instanceof Promise) await checked
  return stored
}
