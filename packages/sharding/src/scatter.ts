import type { Kysely } from 'kysely'
import { ShardUnreachableError } from './errors.js'

/** Options of one scatter-gather call. */
export interface ScatterOptions {
  /** Per-shard deadline; defaults to the router's `scatterDeadlineMs`. */
  deadlineMs?: number
  /**
   * false: a shard that fails or misses the deadline fails the call with `ShardUnreachableError`.
   * true: the result comes back with `complete: false` and the shards in `missingShards`.
   * @default false
   */
  allowPartial?: boolean
}

/** What a scatter-gather call returns: never silently partial. */
export interface ScatterResult<T> {
  readonly rows: T[]
  /** False when some shard's part is missing (only with `allowPartial: true`). */
  readonly complete: boolean
  readonly missingShards: readonly string[]
}

export interface ShardAnswer<T> {
  readonly shard: string
  readonly value: T
}

const TIMED_OUT = Symbol('timed out')

/**
 * Runs `run` on every shard at once, each under the deadline. A late shard's query is abandoned,
 * not cancelled (its result is ignored): bound it on the server with `statement_timeout` too.
 */
export async function fanOut<DB, T>(
  shards: ReadonlyMap<string, Kysely<DB>>,
  run: (db: Kysely<DB>, shard: string) => Promise<T>,
  deadlineMs: number,
  allowPartial: boolean,
): Promise<{ answers: ShardAnswer<T>[]; missing: string[] }> {
  const errors: unknown[] = []
  const settled = await Promise.all(
    [...shards].map(async ([shard, db]) => {
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
        timer = setTimeout(() => resolve(TIMED_OUT), deadlineMs)
      })
      try {
        const value = await Promise.race([run(db, shard), deadline])
        return value === TIMED_OUT
          ? { shard, missing: true as const }
          : { shard, missing: false as const, value }
      } catch (error) {
        errors.push(error)
        return { shard, missing: true as const }
      } finally {
        clearTimeout(timer)
      }
    }),
  )
  const missing = settled.filter((entry) => entry.missing).map((entry) => entry.shard)
  if (missing.length > 0 && !allowPartial) throw new ShardUnreachableError(missing, deadlineMs, errors[0])
  const answers = settled.flatMap((entry) =>
    entry.missing ? [] : [{ shard: entry.shard, value: entry.value as T }],
  )
  return { answers, missing }
}
