import { InvalidGlobalIdError } from './errors.js'

// 63 bits, so an ID is a positive Postgres bigint: 41 bits of milliseconds since the custom
// epoch (69 years), 12 bits of bucket (hot buckets included), 10 bits of sequence.
export const TIMESTAMP_BITS = 41n
export const BUCKET_BITS = 12n
export const SEQUENCE_BITS = 10n
export const SEQUENCE_LIMIT = 1 << Number(SEQUENCE_BITS)
/** The largest timestamp part of an ID (ms since the custom epoch). */
export const MAX_TIMESTAMP_MS = Number((1n << TIMESTAMP_BITS) - 1n)
const MAX_ID = (1n << (TIMESTAMP_BITS + BUCKET_BITS + SEQUENCE_BITS)) - 1n

/** 2025-01-01T00:00:00Z, the default custom epoch of the timestamp part. */
export const DEFAULT_ID_EPOCH_MS = 1_735_689_600_000

export function composeId(ms: number, bucket: number, sequence: number): bigint {
  return (BigInt(ms) << (BUCKET_BITS + SEQUENCE_BITS)) | (BigInt(bucket) << SEQUENCE_BITS) | BigInt(sequence)
}

function checkId(id: unknown): bigint {
  if (typeof id === 'string' && /^\d+$/.test(id)) return checkId(BigInt(id))
  if (typeof id !== 'bigint' || id < 0n || id > MAX_ID) throw new InvalidGlobalIdError(id)
  return id
}

/**
 * The bucket a global ID was made for: route a row found by its ID without a lookup
 * (`db.forBucket(bucketOfId(id))`). Accepts the ID as a bigint or its digits (as `pg` returns it).
 */
export function bucketOfId(id: bigint | string): number {
  return Number((checkId(id) >> SEQUENCE_BITS) & ((1n << BUCKET_BITS) - 1n))
}

/** When the ID was issued (ms since the Unix epoch), given the generator's `epochMs`. */
export function timestampOfId(id: bigint | string, epochMs = DEFAULT_ID_EPOCH_MS): number {
  return Number(checkId(id) >> (BUCKET_BITS + SEQUENCE_BITS)) + epochMs
}
