import { type Kysely, sql } from 'kysely'
import { ShardMoveError } from '../errors.js'
import type { Observability } from '../observability.js'
import type { ShardMap } from '../shard-map.js'
import { BUCKET_LOCK_SPACE, type ShardedTable } from '../shard-sql.js'
import {
  deleteChunk,
  nextBoundary,
  rangeChecksum,
  scanChunk,
  syncKeys,
  type TableShape,
  upsertRows,
} from './bucket-rows.js'
import type { MoveState, MoveStateStore } from './move-state.js'
import type { MoveProgress } from './mover-types.js'

// biome-ignore lint/suspicious/noExplicitAny: shards are addressed by table name, not schema type
type AnyKysely = Kysely<any>

/** Full catch-up rounds before a move gives up on converging instead of fencing. */
export const CATCH_UP_ROUNDS = 1_000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** What every phase of a move needs. */
export interface PhaseContext {
  readonly tables: readonly ShardedTable[]
  readonly chunkSize: number
  readonly fenceLockTimeoutMs: number
  readonly states: MoveStateStore
  readonly obs: Observability
  readonly progress: (event: MoveProgress) => void
  readonly skipCatchUpAndVerify: boolean
  readonly catchUpRounds: number
}

/** The phases of one bucket move (capture, copy, catch-up, fence, verify), each resumable. */
export class MovePhases {
  readonly #c: PhaseContext

  constructor(context: PhaseContext) {
    this.#c = context
  }

  /** Starts capturing the bucket's changes on the source; the target gives up any old fence. */
  async markMoving(source: AnyKysely, target: AnyKysely, bucket: number): Promise<void> {
    await sql`delete from scale_shard_bucket_state where bucket = ${bucket}`.execute(target)
    await sql`insert into scale_shard_bucket_state (bucket, state) values (${bucket}, 'moving')
      on conflict (bucket) do update set state = 'moving'`.execute(source)
    // A write that began before the mark did not capture its change: let those finish first,
    // so the copy (which starts after) sees them.
    await this.waitForOlderTransactions(source)
  }

  /** Waits until every transaction that started before now on the shard has ended. */
  async waitForOlderTransactions(db: AnyKysely, timeoutMs = 60_000): Promise<void> {
    const { rows } = await sql<{ now: string }>`select clock_timestamp()::text as now`.execute(db)
    const since = rows[0]?.now
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const { rows: older } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'
          and xact_start < ${since}::timestamptz
          and (backend_xid is not null or backend_xmin is not null)`.execute(db)
      if ((older[0]?.n ?? 0) === 0) return
      if (Date.now() > deadline)
        throw new ShardMoveError('transactions older than the move did not end in time')
      await sleep(10)
    }
  }

  /**
   * Undoes a move that cannot finish (before its epoch is published): the source stops capturing
   * and drops any fence, the log and the target's partial copy are deleted, the state forgotten.
   */
  async abandon(source: AnyKysely, target: AnyKysely, map: ShardMap, bucket: number, shapes: TableShape[]) {
    await sql`delete from scale_shard_bucket_state where bucket = ${bucket}`.execute(source)
    await sql`delete from scale_shard_changes where bucket = ${bucket}`.execute(source)
    await this.clearTarget(target, map, bucket, shapes)
    await this.#c.states.forget(bucket)
  }

  async clearTarget(target: AnyKysely, map: ShardMap, bucket: number, shapes: TableShape[]): Promise<void> {
    for (const [index, table] of this.#c.tables.entries()) {
      let last: string | null = null
      for (;;) {
        const chunk = await deleteChunk(
          target,
          table,
          shapes[index] as TableShape,
          map,
          bucket,
          last,
          this.#c.chunkSize,
        )
        last = chunk.last
        if (chunk.done) break
      }
    }
  }

  async copy(
    source: AnyKysely,
    target: AnyKysely,
    map: ShardMap,
    move: MoveState,
    shapes: TableShape[],
  ): Promise<number> {
    let copied = 0
    for (let index = move.copyTable; index < this.#c.tables.length; index++) {
      const table = this.#c.tables[index] as ShardedTable
      let last = index === move.copyTable ? move.copiedKey : null
      for (;;) {
        const chunk = await scanChunk(
          source,
          table,
          shapes[index] as TableShape,
          map,
          move.bucket,
          last,
          this.#c.chunkSize,
        )
        await upsertRows(target, table, shapes[index] as TableShape, map, move.bucket, chunk.rows)
        copied += chunk.rows.length
        last = chunk.last
        await this.#c.states.update(move.bucket, { copyTable: index, copiedKey: last })
        this.#c.obs.increment('sharding_move_rows_copied_total', undefined, chunk.rows.length)
        this.#c.progress({ bucket: move.bucket, step: 'copying', rows: copied })
        if (chunk.done) break
      }
      await this.#c.states.update(move.bucket, { copyTable: index + 1, copiedKey: null })
    }
    return copied
  }

  /**
   * Replays captured changes in order, as "make the target's row equal the source's". Until
   * `drain`, stops once a round finds little left (the cut-over takes the rest while fenced).
   * Writes faster than the replay never leave little: after `catchUpRounds` (1,000) full rounds it
   * refuses to go on to the fence, whose write pause would last as long as draining the backlog.
   */
  async catchUp(
    source: AnyKysely,
    target: AnyKysely,
    map: ShardMap,
    bucket: number,
    shapes: TableShape[],
    drain: boolean,
  ): Promise<number> {
    let applied = 0
    for (let round = 0; ; round++) {
      if (round === this.#c.catchUpRounds && !drain)
        throw new ShardMoveError(
          `catch-up did not keep up with writes to bucket ${bucket} after ${this.#c.catchUpRounds} rounds of ${this.#c.chunkSize} changes; not fencing with a backlog (the write pause would last until it drained). The move stays resumable: run it again when writes to the bucket slow down, or with a larger chunkSize`,
          { bucket, changesApplied: applied },
        )
      // Consumed, not read past a high-water mark: change ids are taken at insert time but become
      // visible at commit, so a lower id can appear after a higher one was replayed.
      const { rows } = await sql<{
        id: string
        tbl: string
        pk: string
      }>`select id::text, tbl, pk from scale_shard_changes
        where bucket = ${bucket} order by id limit ${this.#c.chunkSize}`.execute(source)
      if (rows.length === 0) break
      for (const [index, table] of this.#c.tables.entries()) {
        const plain = table.name.split('.').pop()
        const keys = [...new Set(rows.filter((row) => row.tbl === plain).map((row) => row.pk))]
        await syncKeys(source, target, table, shapes[index] as TableShape, map, bucket, keys)
      }
      // Replaying is idempotent, so a crash between the sync and this delete only replays again.
      await sql`delete from scale_shard_changes where id = any(${rows.map((row) => row.id)}::bigint[])`.execute(
        source,
      )
      applied += rows.length
      const state = (await this.#c.states.get(bucket)) as MoveState
      await this.#c.states.update(bucket, {
        appliedChange: String(BigInt(state.appliedChange) + BigInt(rows.length)),
      })
      this.#c.progress({ bucket, step: 'catching-up', changes: applied })
      if (!drain && rows.length < Math.max(10, this.#c.chunkSize / 10)) break
    }
    return applied
  }

  /**
   * The write pause starts: the bucket's state becomes 'fenced' and the exclusive bucket lock
   * waits out writes already under way (they hold it shared until they commit), so every later
   * write sees the fence and is refused (SQLSTATE SHF01) until routers have the new epoch.
   */
  async fence(
    source: AnyKysely,
    target: AnyKysely,
    map: ShardMap,
    bucket: number,
    shapes: TableShape[],
    counts: { changesApplied: number },
  ): Promise<number> {
    this.#c.progress({ bucket, step: 'fencing' })
    for (let attempt = 1; ; attempt++) {
      const fencedAt = Date.now()
      try {
        await source.transaction().execute(async (trx) => {
          await sql
            .raw(`set local lock_timeout = ${Math.max(1, Math.floor(this.#c.fenceLockTimeoutMs))}`)
            .execute(trx)
          await sql`insert into scale_shard_bucket_state (bucket, state) values (${bucket}, 'fenced')
            on conflict (bucket) do update set state = 'fenced'`.execute(trx)
          await sql`select pg_advisory_xact_lock(${BUCKET_LOCK_SPACE}, ${bucket})`.execute(trx)
        })
        return fencedAt
      } catch (error) {
        if (attempt >= 5)
          throw new ShardMoveError('could not fence the bucket: writes kept it locked', { bucket }, error)
        this.#c.obs.logger.warn(
          { bucket, attempt, err: error },
          '[@scale/sharding] fence timed out; catching up again',
        )
        if (!this.#c.skipCatchUpAndVerify)
          counts.changesApplied += await this.catchUp(source, target, map, bucket, shapes, false)
      }
    }
  }

  /** Chunked checksums of the bucket on both sides; on a mismatch the fence is lifted again. */
  async verifyCopy(
    source: AnyKysely,
    target: AnyKysely,
    map: ShardMap,
    bucket: number,
    shapes: TableShape[],
  ): Promise<number> {
    this.#c.progress({ bucket, step: 'verifying' })
    let chunks = 0
    for (const [index, table] of this.#c.tables.entries()) {
      const shape = shapes[index] as TableShape
      let last: string | null = null
      for (;;) {
        // Ranges of the source's keys (all buckets), compared for this bucket's rows on both sides;
        // larger than copy chunks: this runs inside the write pause.
        const chunk = await nextBoundary(source, table, shape, last, this.#c.chunkSize * 10)
        if (chunk.last !== null && chunk.last !== last) {
          const [left, right] = await Promise.all([
            rangeChecksum(source, table, shape, map, bucket, last, chunk.last),
            rangeChecksum(target, table, shape, map, bucket, last, chunk.last),
          ])
          chunks++
          if (left.md5 !== right.md5 || left.count !== right.count) {
            await sql`update scale_shard_bucket_state set state = 'moving' where bucket = ${bucket}`.execute(
              source,
            )
            await this.#c.states.update(bucket, { step: 'catching-up' })
            throw new ShardMoveError(
              'checksums differ after the final catch-up; the bucket stays on its source',
              {
                bucket,
                table: table.name,
                from: last,
                to: chunk.last,
              },
            )
          }
        }
        last = chunk.last
        if (chunk.done) break
      }
    }
    return chunks
  }
}
