import type {
  CompiledQuery,
  DatabaseConnection,
  PostgresCursorConstructor,
  PostgresPoolClient,
  QueryResult,
} from 'kysely'
import { ReadReplicaError, StreamUnavailableError } from './errors.js'

// Kysely reports numAffectedRows for these (its PostgresConnection does the same).
const WRITE_COMMANDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE'])

/** A pg pool client as this package uses it: `release(true)` destroys it (pg closes its socket). */
export interface PoolClientLike extends PostgresPoolClient {
  release(destroy?: boolean | Error): void
}

/** A statement was cut off by the router: a deadline passed, or its node was excluded. */
export interface AbandonedStatementError extends Error {
  code: 'ETIMEDOUT' | 'ECONNABORTED'
  abandoned: 'deadline' | 'excluded'
}

export function abandonedError(
  message: string,
  abandoned: AbandonedStatementError['abandoned'],
): AbandonedStatementError {
  return Object.assign(new Error(message), {
    code: abandoned === 'deadline' ? ('ETIMEDOUT' as const) : ('ECONNABORTED' as const),
    abandoned,
  })
}

export function isAbandoned(error: unknown): error is AbandonedStatementError {
  return error instanceof Error && typeof (error as { abandoned?: unknown }).abandoned === 'string'
}

/**
 * One pooled pg client as a Kysely connection, with what Kysely's own lacks: a per-statement
 * deadline and `abandon()`, which destroys the client so a statement stuck on a frozen or
 * excluded server rejects at once and its pool slot is freed.
 */
export class PgConnection implements DatabaseConnection {
  readonly #client: PoolClientLike
  readonly #cursor: PostgresCursorConstructor | undefined
  /** milliseconds each statement may take; 0: no limit */
  deadlineMs = 0
  #released = false
  #broken: Error | undefined
  #cutOff: ((error: Error) => void) | undefined

  constructor(client: PoolClientLike, cursor: PostgresCursorConstructor | undefined) {
    this.#client = client
    this.#cursor = cursor
  }

  get busy(): boolean {
    return this.#cutOff !== undefined
  }

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    if (this.#broken) return Promise.reject(this.#broken)
    return new Promise<QueryResult<R>>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      let settled = false
      const settle = () => {
        settled = true
        this.#cutOff = undefined
        if (timer) clearTimeout(timer)
      }
      this.#cutOff = (error) => {
        if (settled) return
        settle()
        this.#broken = error
        this.release(true)
        reject(error)
      }
      if (this.deadlineMs > 0) {
        const ms = this.deadlineMs
        timer = setTimeout(
          () => this.#cutOff?.(abandonedError(`statement timed out after ${ms} ms`, 'deadline')),
          ms,
        )
        timer.unref()
      }
      this.#client.query<R>(compiledQuery.sql, compiledQuery.parameters as unknown[]).then(
        ({ command, rowCount, rows }) => {
          if (settled) return
          settle()
          if (command === 'COMMIT' || command === 'ROLLBACK') resolve({ rows: [{ command } as R] })
          else if (WRITE_COMMANDS.has(command))
            resolve({ numAffectedRows: BigInt(rowCount), rows: rows ?? [] })
          else resolve({ rows: rows ?? [] })
        },
        (error: unknown) => {
          if (settled) return
          settle()
          reject(error)
        },
      )
    })
  }

  async *streamQuery<R>(
    compiledQuery: CompiledQuery,
    chunkSize = 100,
  ): AsyncIterableIterator<QueryResult<R>> {
    if (!this.#cursor) {
      throw new StreamUnavailableError()
    }
    if (!Number.isInteger(chunkSize) || chunkSize <= 0) {
      throw new ReadReplicaError(
        'E_REPLICA_INVALID_ARGUMENT',
        `.stream(chunkSize): chunkSize must be a positive integer, got ${String(chunkSize)}`,
        { context: { argument: 'chunkSize' } },
      )
    }
    if (this.#broken) throw this.#broken
    const cursor = this.#client.query(
      new this.#cursor<R>(compiledQuery.sql, compiledQuery.parameters.slice()),
    )
    try {
      while (true) {
        const rows = await cursor.read(chunkSize)
        if (rows.length === 0) break
        yield { rows }
      }
    } finally {
      await cursor.close()
    }
  }

  /** Cuts off the running statement (if any): it rejects with `error`, the client is destroyed. */
  abandon(error: Error): void {
    this.#cutOff?.(error)
  }

  /** Back to the pool (once); `destroy` (or a broken connection) closes it instead. */
  release(destroy = false): void {
    if (this.#released) return
    this.#released = true
    this.#client.release(destroy || this.#broken !== undefined ? true : undefined)
  }
}
