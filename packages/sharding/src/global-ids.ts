import { type Kysely, sql } from 'kysely'
import {
  ClockBackwardsError,
  GlobalIdRangeError,
  GlobalIdStoreError,
  ShardingClosedError,
  ShardingOptionsError,
} from './errors.js'
import { composeId, DEFAULT_ID_EPOCH_MS, MAX_TIMESTAMP_MS, SEQUENCE_LIMIT } from './global-id-layout.js'
import type { ShardKey } from './shard-key.js'
import { canonicalKey } from './shard-key.js'
import type { ShardMap } from './shard-map.js'

/** Options of {@link createGlobalIds}. */
export interface GlobalIdsOptions {
  /**
   * The control database holding the per-bucket high-water marks (table `scale_shard_id_slots`,
   * created if missing). Every process that makes IDs must use the same one.
   */
  // biome-ignore lint/suspicious/noExplicitAny: the control table is not part of the user's schema
  db: Kysely<any>
  /** The shard map (or a router: anything with a current `map`) that names a key's bucket. */
  map: ShardMap | { readonly map: ShardMap }
  /**
   * Custom epoch of the 41-bit timestamp, ms since the Unix epoch. Never change it once IDs exist.
   * @default 1735689600000 (2025-01-01)
   */
  epochMs?: number
  /**
   * Milliseconds of ID space (1,024 IDs each) reserved per round trip to the control database.
   * Larger: fewer round trips; another process's IDs in the same bucket may then be stamped up to
   * this far ahead of its clock.
   * @default 100
   */
  reserveMs?: number
  /**
   * How far the clock may be behind the newest ID this generator issued before it refuses
   * (`ClockBackwardsError`). Within it, IDs continue from the high-water mark, never below it.
   * @default 5000
   */
  maxClockBehindMs?: number
  /**
   * The clock, ms since the Unix epoch (inject one in tests).
   * @default Date.now
   */
  clock?: () => number
}

/** Makes Instagram-style 63-bit IDs that carry their bucket. */
export interface GlobalIds {
  /** The next ID for a key's bucket (a row of that key gets it, and is routed by it later). */
  next(key: ShardKey): Promise<bigint>
  /** The next ID for a bucket. */
  nextForBucket(bucket: number): Promise<bigint>
  /** Forgets the unused reservations; idempotent. Later calls throw `ShardingClosedError`. */
  close(): Promise<void>
}

interface Reservation {
  readonly bucket: number
  current: number
  sequence: number
  end: number
}

const SLOTS_TABLE = `create table if not exists scale_shard_id_slots (bucket int primary key, next_ms bigint not null)`

/**
 * IDs: `ms since epochMs (41 bits) | bucket (12) | sequence (10)`.
 *
 * Why a reservation in Postgres and not a worker id: the sequence bits are too few to also carry
 * a worker number, and handing out worker numbers needs leases that expire. Instead each process
 * reserves a window of milliseconds per bucket (`next_ms = greatest(next_ms, now) + reserveMs`,
 * one row lock in the control database) and owns every sequence number in it. Two processes can
 * never hold the same (millisecond, bucket), whatever their clocks say, and a clock stepped back
 * cannot reuse a window: the high-water mark in the table only grows.
 *
 * @example
 * ```ts
 * const ids = createGlobalIds({ db: control, map: db })
 * const id = await ids.next(userId) // bigint; bucketOfId(id) === db.bucketOf(userId)
 * ```
 */
export function createGlobalIds(options: GlobalIdsOptions): GlobalIds {
  if (typeof options?.db?.getExecutor !== 'function')
    throw new ShardingOptionsError('db', 'a Kysely instance is required')
  const epochMs = options.epochMs ?? DEFAULT_ID_EPOCH_MS
  const reserveMs = options.reserveMs ?? 100
  const maxBehind = options.maxClockBehindMs ?? 5_000
  if (!Number.isSafeInteger(epochMs) || epochMs < 0)
    throw new ShardingOptionsError('epochMs', 'must be a non-negative integer')
  if (!Number.isSafeInteger(reserveMs) || reserveMs < 1)
    throw new ShardingOptionsError('reserveMs', 'must be an integer >= 1')
  if (!Number.isFinite(maxBehind) || maxBehind < 0)
    throw new ShardingOptionsError('maxClockBehindMs', 'must be >= 0')
  const clock = options.clock ?? Date.now
  const mapOf = (): ShardMap =>
    ('bucketOfCanonical' in options.map ? options.map : options.map.map) as ShardMap
  const db = options.db
  const reservations = new Map<number, Reservation>()
  const pending = new Map<number, Promise<Reservation>>()
  let created: Promise<unknown> | undefined
  let newestMs = 0
  let closed = false

  const reserve = async (bucket: number, now: number): Promise<Reservation> => {
    try {
      // A failed create is forgotten, so the first call after a database blip tries again.
      created ??= sql
        .raw(SLOTS_TABLE)
        .execute(db)
        .catch((error: unknown) => {
          created = undefined
          throw error
        })
      await created
      const { rows } = await sql<{ first: string }>`
        insert into scale_shard_id_slots as s (bucket, next_ms) values (${bucket}, ${now + reserveMs})
        on conflict (bucket) do update set next_ms = greatest(s.next_ms, ${now}) + ${reserveMs}
        returning (next_ms - ${reserveMs})::text as first`.execute(db)
      const first = Number(rows[0]?.first)
      return { bucket, current: first, sequence: 0, end: first + reserveMs }
    } catch (error) {
      throw new GlobalIdStoreError(bucket, error)
    }
  }

  const take = (reservation: Reservation, now: number): bigint | undefined => {
    // A window the clock has left behind is dropped, so timestamps stay close to the clock.
    if (now >= reservation.end) return undefined
    if (now > reservation.current) {
      reservation.current = now
      reservation.sequence = 0
    }
    if (reservation.sequence >= SEQUENCE_LIMIT) {
      reservation.current++
      reservation.sequence = 0
    }
    if (reservation.current >= reservation.end) return undefined
    // Another process's clock far ahead may have pushed the stored window past the range.
    if (reservation.current > MAX_TIMESTAMP_MS) throw new GlobalIdRangeError(reservation.current)
    newestMs = Math.max(newestMs, reservation.current)
    return composeId(reservation.current, reservation.bucket, reservation.sequence++)
  }

  const nextForBucket = async (target: number): Promise<bigint> => {
    if (closed) throw new ShardingClosedError('next')
    if (!Number.isInteger(target) || target < 0 || target >= mapOf().totalBuckets)
      throw new ShardingOptionsError('bucket', `bucket ${target} is not in the map`)
    for (;;) {
      const now = clock() - epochMs
      // Past 2^41 ms an ID would not fit a bigint (and bucketOfId would refuse it).
      if (!(now >= 0 && now + reserveMs <= MAX_TIMESTAMP_MS)) throw new GlobalIdRangeError(now)
      if (newestMs - now > maxBehind) throw new ClockBackwardsError(newestMs - now, maxBehind)
      const held = reservations.get(target)
      const id = held ? take(held, now) : undefined
      if (id !== undefined) return id
      let waiting = pending.get(target)
      if (!waiting) {
        waiting = reserve(target, now).then((fresh) => {
          reservations.set(target, fresh)
          return fresh
        })
        pending.set(target, waiting)
        waiting.finally(() => pending.delete(target)).catch(() => {})
      }
      await waiting
    }
  }

  return {
    next: (key) => nextForBucket(mapOf().bucketOfCanonical(canonicalKey(key, 'next'))),
    nextForBucket,
    async close() {
      closed = true
      reservations.clear()
    },
  }
}
