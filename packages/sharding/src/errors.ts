import { ScaleError, type ScaleErrorContext, type ScaleErrorOptions } from '@scale/observability'

/** Every code an error of `@scale/sharding` can carry; stable across versions. */
export type ShardingErrorCode =
  | 'E_SHARD_INVALID_OPTIONS'
  | 'E_SHARD_CLOSED'
  | 'E_SHARD_KEY_MISSING'
  | 'E_SHARD_INVALID_KEY'
  | 'E_SHARD_UNKNOWN'
  | 'E_SHARD_MAP_STALE'
  | 'E_SHARD_MAP_INVALID'
  | 'E_SHARD_UNREACHABLE'
  | 'E_SHARD_UNMERGEABLE'
  | 'E_SHARD_CLOCK_BACKWARDS'
  | 'E_SHARD_ID_INVALID'
  | 'E_SHARD_ID_RANGE'
  | 'E_SHARD_ID_STORE'
  | 'E_SHARD_MOVE_FAILED'
  | 'E_SHARD_DEPENDENCY_MISSING'

/** What an error is about, enough to act on it without parsing the message. */
export type ShardingErrorContext = ScaleErrorContext

/** Base class of every error thrown by `@scale/sharding`. */
export class ShardingError extends ScaleError<ShardingErrorCode> {
  constructor(code: ShardingErrorCode, message: string, options: ScaleErrorOptions = {}) {
    super('@scale/sharding', code, message, options)
  }
}

/** Thrown by a factory when an option is missing or out of range; `context.option` names it. */
export class ShardingOptionsError extends ShardingError {
  constructor(option: string, message: string) {
    super('E_SHARD_INVALID_OPTIONS', `option ${option}: ${message}`, { context: { option } })
  }
}

/** A method was called after `close()`. */
export class ShardingClosedError extends ShardingError {
  constructor(method: string) {
    super('E_SHARD_CLOSED', `${method}() was called after close(); create a new instance`, {
      context: { method },
    })
  }
}

/** A shard key was `undefined` or `null`: the query was not run. */
export class ShardKeyMissingError extends ShardingError {
  constructor(method: string) {
    super(
      'E_SHARD_KEY_MISSING',
      `${method}() needs a shard key, got none; pass the key, or use allShards() for a query that has none`,
      { context: { method } },
    )
  }
}

/** A shard key that cannot be routed (NaN, a fraction, an empty string, an object): nothing was run. */
export class InvalidShardKeyError extends ShardingError {
  constructor(reason: string, key: unknown) {
    super(
      'E_SHARD_INVALID_KEY',
      `invalid shard key (${reason}); use a non-empty string, a safe integer or a bigint`,
      {
        context: { reason, keyType: typeof key },
      },
    )
  }
}

/** A shard name that is not configured (in the options, or named by the shard map). */
export class UnknownShardError extends ShardingError {
  constructor(shard: string, known: readonly string[]) {
    super('E_SHARD_UNKNOWN', `unknown shard "${shard}"; configured shards: ${known.join(', ')}`, {
      context: { shard, known },
    })
  }
}

/**
 * The router could not act on a current shard map. `context` says which case:
 * - `waitedMs`: a write reached a shard that no longer owns the key's bucket (this router acted on
 *   an old epoch) and a newer map did not arrive within `staleRetryMs`; the shard refused the
 *   write, nothing was written.
 * - `mapAgeMs`: the store has not confirmed the map for longer than `maxMapAgeMs` and could not be
 *   reached (refused, failed, or no answer within `mapLoadTimeoutMs`); nothing was run.
 * - `storedEpoch`: a save lost to another writer's newer epoch.
 * - `startup: true`: `createShardedKysely()` could not get the map from the store (no answer within
 *   `mapLoadTimeoutMs`, or it failed: see `cause`; `context.step` says `'load'` or `'listen'`). No
 *   router was created and nothing it started is left running; the shards are untouched.
 * - `mapLoadTimeoutMs` alone: `refresh()` could not reach the store (`timedOut` says whether it did
 *   not answer in time or failed); the router keeps its epoch.
 * Retry later.
 */
export class ShardMapStaleError extends ShardingError {
  constructor(context: ShardingErrorContext, cause?: unknown) {
    super('E_SHARD_MAP_STALE', staleMessage(context), { context, cause })
  }
}

function staleMessage(context: ShardingErrorContext): string {
  const storeDown = context.timedOut
    ? `did not answer within ${String(context.mapLoadTimeoutMs)} ms (mapLoadTimeoutMs)`
    : 'failed (see cause)'
  if (context.startup === true)
    return `no shard map yet: the map store ${storeDown} at start-up (${String(context.step)}); no router was created and nothing was left running; call createShardedKysely() again once the store answers`
  if (context.mapAgeMs !== undefined)
    return `the shard map is ${String(context.mapAgeMs)} ms old and the map store could not be reached to confirm it; nothing was run, retry`
  if (context.waitedMs !== undefined)
    return `the shard refused a write for bucket ${String(context.bucket)}: it no longer owns it and no newer shard map arrived in time; nothing was written, retry`
  if (context.mapLoadTimeoutMs !== undefined)
    return `the map store ${storeDown} while reloading the shard map; the router keeps epoch ${String(context.epoch)}, retry`
  return `the stored shard map is at epoch ${String(context.storedEpoch ?? 'unknown')}, so epoch ${String(context.epoch)} was not saved; load the current map and retry`
}

/** A shard map (from a store, a file or the CLI) that does not parse or contradicts itself. */
export class ShardMapInvalidError extends ShardingError {
  constructor(reason: string, cause?: unknown) {
    super('E_SHARD_MAP_INVALID', `invalid shard map: ${reason}`, { context: { reason }, cause })
  }
}

/** One or more shards did not answer a scatter-gather query within its deadline, or failed. */
export class ShardUnreachableError extends ShardingError {
  constructor(shards: readonly string[], deadlineMs: number, cause?: unknown) {
    super(
      'E_SHARD_UNREACHABLE',
      `shard(s) ${shards.join(', ')} did not answer within ${deadlineMs} ms or failed; pass allowPartial: true to get a flagged partial result instead`,
      { context: { shards, deadlineMs }, cause },
    )
  }
}

/** A scatter-gather query whose results cannot be merged into the answer one database would give. */
export class UnmergeableQueryError extends ShardingError {
  constructor(reason: string) {
    super(
      'E_SHARD_UNMERGEABLE',
      `this query cannot be merged across shards correctly: ${reason}; run it per shard with allShards().each() or rewrite it`,
      { context: { reason } },
    )
  }
}

/** The clock is further behind the last issued ID than `maxClockBehindMs`; no ID was issued. */
export class ClockBackwardsError extends ShardingError {
  constructor(behindMs: number, maxClockBehindMs: number) {
    super(
      'E_SHARD_CLOCK_BACKWARDS',
      `the clock is ${behindMs} ms behind the last issued ID (more than maxClockBehindMs = ${maxClockBehindMs}); refusing to issue IDs until it catches up`,
      { context: { behindMs, maxClockBehindMs } },
    )
  }
}

/** A value that is not a global ID of this layout (negative, too large, not a bigint). */
export class InvalidGlobalIdError extends ShardingError {
  constructor(id: unknown) {
    super('E_SHARD_ID_INVALID', `not a global ID: ${String(id)}`, { context: { id: String(id) } })
  }
}

/**
 * The generator's clock (minus `epochMs`) no longer fits the 41 bits of an ID, or is before the
 * epoch: no ID was issued. Check the clock and `epochMs`.
 */
export class GlobalIdRangeError extends ShardingError {
  constructor(msSinceEpoch: number) {
    super(
      'E_SHARD_ID_RANGE',
      `the clock is ${msSinceEpoch} ms from epochMs, outside the 41-bit timestamp range of an ID (0 .. 2^41 - 1); no ID was issued`,
      { context: { msSinceEpoch } },
    )
  }
}

/** The control database did not answer a reservation of ID space; no ID was issued, the next call retries. */
export class GlobalIdStoreError extends ShardingError {
  constructor(bucket: number, cause: unknown) {
    super(
      'E_SHARD_ID_STORE',
      `could not reserve IDs for bucket ${bucket} in the control database: ${cause instanceof Error ? cause.message : String(cause)}; no ID was issued, retry`,
      { context: { bucket }, cause },
    )
  }
}

/** A resharding step failed (checksum mismatch, a target that already holds rows, a modulo map). */
export class ShardMoveError extends ShardingError {
  constructor(reason: string, context: ShardingErrorContext = {}, cause?: unknown) {
    super('E_SHARD_MOVE_FAILED', `move failed: ${reason}`, { context: { ...context, reason }, cause })
  }
}
