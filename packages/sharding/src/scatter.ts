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

// SQLSTATE classes that say the shard (not the query) is unavailable: connection exception,
// insufficient resources, operator intervention (shutdown, statement_timeout), system error.
const UNAVAILABLE_CLASSES = new Set(['08', '53', '57', '58'])

/**
 * True for an error the query itself caused (a Postgres SQLSTATE outside the unavailable classes:
 * a missing table or function, a constraint, bad input): every shard would answer the same, so it
 * is the caller's error, not a missing shard. Connection and timeout errors carry no SQLSTATE.
 */
export function isQueryError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !UNAVAILABLE_CLASSES.has(code.slice(0, 2))
}

/**
 * Runs `run` on every shard at once, each under the deadline. A late shard's query is abandoned,
 * not cancelled (its result is ignored, its pool connection stays busy until the server answers):
 * bound it in the client too (`query_timeout`, `connectionTimeoutMillis` on the pool), as a hung
 * server runs no `statement_timeout`. A query error (see {@link isQueryError}) is rethrown as it is.
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
        if (Number.isFinite(deadlineMs)) timer = setTimeout(() => resolve(TIMED_OUT), deadlineMs)
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
  const queryError = errors.find(isQueryError)
  if (queryError !== undefined) throw queryError
  const missing = settled.filter((entry) => entry.missing).map((entry) => entry.shard)
  if (missing.length > 0 && !allowPartial) throw new ShardUnreachableError(missing, deadlineMs, errors[0])
  const answers = settled.flatMap((entry) =>
    entry.missing ? [] : [{ shard: entry.shard, value: entry.value as T }],
  )
  return { answers, missing }
}
