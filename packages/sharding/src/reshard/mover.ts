import { type Kysely, sql } from 'kysely'
import {
  ShardingClosedError,
  ShardingOptionsError,
  ShardMapStaleError,
  ShardMoveError,
  UnknownShardError,
} from '../errors.js'
import type { ShardMapStore } from '../map-store.js'
import { type Logger, type MetricsHook, Observability } from '../observability.js'
import { planRebalance, type RebalancePlan } from '../plan.js'
import type { ShardMap } from '../shard-map.js'
import { BUCKET_LOCK_SPACE, checkTable, installShard, type ShardedTable } from '../shard-sql.js'
import {
  deleteChunk,
  rangeChecksum,
  scanChunk,
  syncKeys,
  type TableShape,
  tableShape,
  upsertRows,
} from './bucket-rows.js'
import { type MoveState, MoveStateStore, type MoveStep } from './move-state.js'

// biome-ignore lint/suspicious/noExplicitAny: shards are addressed by table name, not schema type
type AnyKysely = Kysely<any>

/** Options of {@link createShardMover}. */
export interface ShardMoverOptions {
  /** The control database: the move state lives in `scale_shard_moves` there (resumable). */
  control: AnyKysely
  /** Where the shard map lives; each cut-over saves the next epoch here. */
  store: ShardMapStore
  /** Every shard by name, the new ones included. */
  shards: Readonly<Record<string, AnyKysely>>
  /** The sharded tables: name, shard key column and a single-column primary key. */
  tables: readonly ShardedTable[]
  /**
   * Rows per copy, replay, checksum and delete chunk.
   * @default 500
   */
  chunkSize?: number
  /**
   * Wait between publishing the new epoch and deleting the source's copy, so routers that have not
   * seen the new epoch yet (at most their `refreshIntervalMs`) still read complete rows there.
   * @default 2000
   */
  cleanupDelayMs?: number
  /**
   * The cut-over waits at most this long for writes already under way on the bucket; then it
   * catches up again and retries (up to 5 times).
   * @default 5000
   */
  fenceLockTimeoutMs?: number
  /** Called at each step and chunk (the CLI prints it). */
  onProgress?: (event: MoveProgress) => void
  /** @default silent */
  logger?: Logger
  /** `sharding_move_pause_ms`, `sharding_move_rows_copied_total`. @default undefined */
  metrics?: MetricsHook
}

/** A step or a chunk of a move. */
export interface MoveProgress {
  readonly bucket: number
  readonly step: MoveStep | 'fencing' | 'verifying' | 'cleaning'
  readonly rows?: number
  readonly changes?: number
}

/** What a finished bucket move did. */
export interface MoveReport {
  readonly bucket: number
  readonly source: string
  readonly target: string
  readonly rowsCopied: number
  readonly changesApplied: number
  readonly checksumChunks: number
  /** How long writes to this bucket were refused (fence to new epoch). */
  readonly pauseMs: number
  /** The move picked up where an earlier (crashed) run left it. */
  readonly resumed: boolean
}

/** The result of {@link ShardMover.verify}: where the bucket's rows are. */
export interface VerifyReport {
  readonly bucket: number
  readonly owner: string
  /** Rows of the bucket per shard; only the owner should have any once no move is in flight. */
  readonly rowsByShard: Readonly<Record<string, number>>
}

/** Moves buckets between shards online; see {@link createShardMover}. */
export interface ShardMover {
  /** Installs the hash function, bucket-state tables and guard triggers on every shard (idempotent). */
  install(): Promise<void>
  /** The moves that even the buckets out over `shards`, with their cost. */
  plan(shards: readonly string[]): Promise<RebalancePlan>
  /** Moves one bucket (or resumes its unfinished move). */
  moveBucket(bucket: number, target: string): Promise<MoveReport>
  /** Finishes unfinished moves, then runs the plan for `shards`, one bucket at a time. */
  rebalance(shards: readonly string[]): Promise<MoveReport[]>
  /** Counts the bucket's rows on every shard. */
  verify(bucket: number): Promise<VerifyReport>
  /** Every move recorded in the control table. */
  status(): Promise<MoveState[]>
  /** Stops; does not close the Kysely instances it was given. Idempotent. */
  close(): Promise<void>
}

/** Not part of the public options: lets a test prove that the catch-up step matters. */
export interface MoverInternals {
  skipCatchUpAndVerify?: boolean
  afterStep?: (step: MoveStep, bucket: number) => Promise<void>
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

class Mover implements ShardMover {
  readonly #o: Required<Pick<ShardMoverOptions, 'chunkSize' | 'cleanupDelayMs' | 'fenceLockTimeoutMs'>> &
    ShardMoverOptions
  readonly #states: MoveStateStore
  readonly #obs: Observability
  readonly #internals: MoverInternals
  #closed = false

  constructor(options: ShardMoverOptions, internals: MoverInternals) {
    this.#o = {
      ...options,
      chunkSize: options.chunkSize ?? 500,
      cleanupDelayMs: options.cleanupDelayMs ?? 2_000,
      fenceLockTimeoutMs: options.fenceLockTimeoutMs ?? 5_000,
    }
    this.#states = new MoveStateStore(options.control)
    this.#obs = new Observability(options.logger, options.metrics)
    this.#internals = internals
  }

  #shard(name: string): AnyKysely {
    if (this.#closed) throw new ShardingClosedError('moveBucket')
    const db = this.#o.shards[name]
    if (!db) throw new UnknownShardError(name, Object.keys(this.#o.shards))
    return db
  }

  async #map(): Promise<ShardMap> {
    const map = await this.#o.store.load()
    if (!map) throw new ShardMoveError('the store holds no shard map')
    return map
  }

  #progress(event: MoveProgress): void {
    try {
      this.#o.onProgress?.(event)
    } catch {}
  }

  async install(): Promise<void> {
    const map = await this.#map()
    for (const name of Object.keys(this.#o.shards)) await installShard(this.#shard(name), map, this.#o.tables)
  }

  async plan(shards: readonly string[]): Promise<RebalancePlan> {
    return planRebalance(await this.#map(), shards)
  }

  async status(): Promise<MoveState[]> {
    return this.#states.all()
  }

  async rebalance(shards: readonly string[]): Promise<MoveReport[]> {
    const reports: MoveReport[] = []
    for (const state of await this.#states.all()) {
      if (state.step !== 'done') reports.push(await this.moveBucket(state.bucket, state.target))
    }
    for (const move of (await this.plan(shards)).moves)
      reports.push(await this.moveBucket(move.bucket, move.to))
    return reports
  }

  async verify(bucket: number): Promise<VerifyReport> {
    const map = await this.#map()
    const rowsByShard: Record<string, number> = {}
    for (const name of Object.keys(this.#o.shards)) {
      let count = 0
      for (const table of this.#o.tables) {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from ${sql.table(table.name)} t
          where scale_shard_bucket(${sql.ref(`t.${table.shardKey}`)}::text, ${map.data.bucketCount}) = ${bucket}`.execute(
          this.#shard(name),
        )
        count += rows[0]?.n ?? 0
      }
      rowsByShard[name] = count
    }
    return { bucket, owner: map.shardOfBucket(bucket), rowsByShard }
  }

  async moveBucket(bucket: number, target: string): Promise<MoveReport> {
    let state = await this.#states.get(bucket)
    const map = await this.#map()
    if (map.strategy !== 'bucket')
      throw new ShardMoveError('a modulo map cannot move single buckets', { bucket })
    if (!Number.isInteger(bucket) || bucket < 0 || bucket >= map.totalBuckets)
      throw new ShardMoveError(`bucket ${bucket} is not in the map`, { bucket })
    this.#shard(target)
    const resumed = state !== undefined && state.step !== 'done'
    if (!resumed) {
      const source = map.shardOfBucket(bucket)
      if (source === target)
        return {
          bucket,
          source,
          target,
          rowsCopied: 0,
          changesApplied: 0,
          checksumChunks: 0,
          pauseMs: 0,
          resumed: false,
        }
      state = await this.#states.begin(bucket, source, target)
    }
    const move = state as MoveState
    if (resumed && move.target !== target)
      throw new ShardMoveError(`bucket ${bucket} is mid-move to ${move.target}; finish that first`, {
        bucket,
      })
    const source = this.#shard(move.source)
    const destination = this.#shard(move.target)
    const shapes = await Promise.all(this.#o.tables.map((table) => tableShape(source, table)))
    const counts = { rowsCopied: 0, changesApplied: 0, checksumChunks: 0 }
    let step = move.step
    let fencedAt = move.fencedAt

    if (step === 'copying') {
      await this.#markMoving(source, destination, bucket)
      const fresh = move.copyTable === 0 && move.copiedKey === null
      if (fresh) await this.#clearTarget(destination, map, bucket, shapes)
      counts.rowsCopied += await this.#copy(source, destination, map, move, shapes)
      await this.#internals.afterStep?.('copying', bucket)
      step = 'catching-up'
      await this.#states.update(bucket, { step })
    }
    if (step === 'catching-up') {
      if (!this.#internals.skipCatchUpAndVerify)
        counts.changesApplied += await this.#catchUp(source, destination, map, bucket, shapes, false)
      fencedAt = await this.#fence(source, destination, map, bucket, shapes, counts)
      step = 'fenced'
      await this.#states.update(bucket, { step, fencedAt })
      await this.#internals.afterStep?.('fenced', bucket)
    }
    if (step === 'fenced') {
      await this.#waitForOlderTransactions(source)
      if (!this.#internals.skipCatchUpAndVerify) {
        counts.changesApplied += await this.#catchUp(source, destination, map, bucket, shapes, true)
        counts.checksumChunks += await this.#verifyCopy(source, destination, map, bucket, shapes)
      }
      await this.#publish(bucket, move.target)
      const pauseMs = Date.now() - (fencedAt ?? Date.now())
      this.#obs.observe('sharding_move_pause_ms', pauseMs)
      step = 'published'
      await this.#states.update(bucket, { step, pauseMs })
      await this.#internals.afterStep?.('published', bucket)
    }
    if (step === 'published') {
      this.#progress({ bucket, step: 'cleaning' })
      await sleep(this.#o.cleanupDelayMs)
      for (const [index, table] of this.#o.tables.entries()) {
        let last: string | null = null
        for (;;) {
          const chunk = await deleteChunk(
            source,
            table,
            shapes[index] as TableShape,
            map,
            bucket,
            last,
            this.#o.chunkSize,
          )
          last = chunk.last
          if (chunk.done) break
        }
      }
      await sql`delete from scale_shard_changes where bucket = ${bucket}`.execute(source)
      step = 'done'
      await this.#states.update(bucket, { step })
    }
    this.#progress({ bucket, step: 'done' })
    const final = (await this.#states.get(bucket)) as MoveState
    return {
      bucket,
      source: move.source,
      target: move.target,
      ...counts,
      pauseMs: final.pauseMs ?? 0,
      resumed,
    }
  }

  /** Starts capturing the bucket's changes on the source; the target gives up any old fence. */
  async #markMoving(source: AnyKysely, target: AnyKysely, bucket: number): Promise<void> {
    await sql`delete from scale_shard_bucket_state where bucket = ${bucket}`.execute(target)
    await sql`insert into scale_shard_bucket_state (bucket, state) values (${bucket}, 'moving')
      on conflict (bucket) do update set state = 'moving'`.execute(source)
    // A write that began before the mark did not capture its change: let those finish first,
    // so the copy (which starts after) sees them.
    await this.#waitForOlderTransactions(source)
  }

  /** Waits until every transaction that started before now on the shard has ended. */
  async #waitForOlderTransactions(db: AnyKysely, timeoutMs = 60_000): Promise<void> {
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

  async #clearTarget(target: AnyKysely, map: ShardMap, bucket: number, shapes: TableShape[]): Promise<void> {
    for (const [index, table] of this.#o.tables.entries()) {
      let last: string | null = null
      for (;;) {
        const chunk = await deleteChunk(
          target,
          table,
          shapes[index] as TableShape,
          map,
          bucket,
          last,
          this.#o.chunkSize,
        )
        last = chunk.last
        if (chunk.done) break
      }
    }
  }

  async #copy(
    source: AnyKysely,
    target: AnyKysely,
    map: ShardMap,
    move: MoveState,
    shapes: TableShape[],
  ): Promise<number> {
    let copied = 0
    for (let index = move.copyTable; index < this.#o.tables.length; index++) {
      const table = this.#o.tables[index] as ShardedTable
      let last = index === move.copyTable ? move.copiedKey : null
      for (;;) {
        const chunk = await scanChunk(
          source,
          table,
          shapes[index] as TableShape,
          map,
          move.bucket,
          last,
          this.#o.chunkSize,
        )
        await upsertRows(target, table, shapes[index] as TableShape, chunk.rows)
        copied += chunk.rows.length
        last = chunk.last
        await this.#states.update(move.bucket, { copyTable: index, copiedKey: last })
        this.#obs.increment('sharding_move_rows_copied_total', undefined, chunk.rows.length)
        this.#progress({ bucket: move.bucket, step: 'copying', rows: copied })
        if (chunk.done) break
      }
      await this.#states.update(move.bucket, { copyTable: index + 1, copiedKey: null })
    }
    return copied
  }

  /**
   * Replays captured changes in order, as "make the target's row equal the source's". Until
   * `drain`, stops once a round finds little left (the cut-over takes the rest while fenced).
   */
  async #catchUp(
    source: AnyKysely,
    target: AnyKysely,
    map: ShardMap,
    bucket: number,
    shapes: TableShape[],
    drain: boolean,
  ): Promise<number> {
    let applied = 0
    for (let round = 0; round < 1_000; round++) {
      // Consumed, not read past a high-water mark: change ids are taken at insert time but become
      // visible at commit, so a lower id can appear after a higher one was replayed.
      const { rows } = await sql<{
        id: string
        tbl: string
        pk: string
      }>`select id::text, tbl, pk from scale_shard_changes
        where bucket = ${bucket} order by id limit ${this.#o.chunkSize}`.execute(source)
      if (rows.length === 0) break
      for (const [index, table] of this.#o.tables.entries()) {
        const plain = table.name.split('.').pop()
        const keys = [...new Set(rows.filter((row) => row.tbl === plain).map((row) => row.pk))]
        await syncKeys(source, target, table, shapes[index] as TableShape, map, bucket, keys)
      }
      // Replaying is idempotent, so a crash between the sync and this delete only replays again.
      await sql`delete from scale_shard_changes where id = any(${rows.map((row) => row.id)}::bigint[])`.execute(
        source,
      )
      applied += rows.length
      const state = (await this.#states.get(bucket)) as MoveState
      await this.#states.update(bucket, {
        appliedChange: String(BigInt(state.appliedChange) + BigInt(rows.length)),
      })
      this.#progress({ bucket, step: 'catching-up', changes: applied })
      if (!drain && rows.length < Math.max(10, this.#o.chunkSize / 10)) break
    }
    return applied
  }

  /**
   * The write pause starts: the bucket's state becomes 'fenced' and the exclusive bucket lock
   * waits out writes already under way (they hold it shared until they commit), so every later
   * write sees the fence and is refused (SQLSTATE SHF01) until routers have the new epoch.
   */
  async #fence(
    source: AnyKysely,
    target: AnyKysely,
    map: ShardMap,
    bucket: number,
    shapes: TableShape[],
    counts: { changesApplied: number },
  ): Promise<number> {
    this.#progress({ bucket, step: 'fencing' })
    for (let attempt = 1; ; attempt++) {
      const fencedAt = Date.now()
      try {
        await source.transaction().execute(async (trx) => {
          await sql
            .raw(`set local lock_timeout = ${Math.max(1, Math.floor(this.#o.fenceLockTimeoutMs))}`)
            .execute(trx)
          await sql`update scale_shard_bucket_state set state = 'fenced' where bucket = ${bucket}`.execute(
            trx,
          )
          await sql`select pg_advisory_xact_lock(${BUCKET_LOCK_SPACE}, ${bucket})`.execute(trx)
        })
        return fencedAt
      } catch (error) {
        if (attempt >= 5)
          throw new ShardMoveError('could not fence the bucket: writes kept it locked', { bucket }, error)
        this.#obs.logger.warn(
          { bucket, attempt, err: error },
          '[@scale/sharding] fence timed out; catching up again',
        )
        if (!this.#internals.skipCatchUpAndVerify)
          counts.changesApplied += await this.#catchUp(source, target, map, bucket, shapes, false)
      }
    }
  }

  /** Chunked checksums of the bucket on both sides; on a mismatch the fence is lifted again. */
  async #verifyCopy(
    source: AnyKysely,
    target: AnyKysely,
    map: ShardMap,
    bucket: number,
    shapes: TableShape[],
  ): Promise<number> {
    this.#progress({ bucket, step: 'verifying' })
    let chunks = 0
    for (const [index, table] of this.#o.tables.entries()) {
      const shape = shapes[index] as TableShape
      let last: string | null = null
      for (;;) {
        const chunk = await scanChunk(source, table, shape, map, bucket, last, this.#o.chunkSize)
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
            await this.#states.update(bucket, { step: 'catching-up' })
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

  async #publish(bucket: number, target: string): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const map = await this.#map()
      if (map.shardOfBucket(bucket) === target) return
      try {
        await this.#o.store.save(map.withBucketOn(bucket, target))
        return
      } catch (error) {
        if (!(error instanceof ShardMapStaleError)) throw error
      }
    }
    throw new ShardMoveError('could not save the new epoch: the map kept changing', { bucket })
  }

  async close(): Promise<void> {
    this.#closed = true
  }
}

/**
 * Moves buckets between shards while the application keeps writing: copy, catch up on the changes
 * captured meanwhile, fence the bucket (its writes pause), drain, verify by chunked checksums,
 * publish the next epoch, clean up the source. Every step is recorded in the control table, so a
 * killed mover resumes where it stopped when run again.
 *
 * Changes are captured by a trigger on the source (installed by `install()`), not by logical
 * replication: it needs no `wal_level = logical`, no replication slot that would hold WAL forever
 * if the mover died, and no superuser; it captures exactly the moving bucket, in the same
 * transaction as the write (a rolled-back write leaves nothing behind); and the same trigger is
 * the fence that refuses writes from routers on an old epoch.
 *
 * @example
 * ```ts
 * const mover = createShardMover({ control, store, shards, tables: [{ name: 'photo', shardKey: 'user_id', primaryKey: 'id' }] })
 * await mover.install()
 * const reports = await mover.rebalance(['s1', 's2', 's3', 's4', 's5'])
 * ```
 */
export function createShardMover(options: ShardMoverOptions): ShardMover {
  return createMover(options, {})
}

/** The mover with its test-only switches (not exported from the package). */
export function createMover(options: ShardMoverOptions, internals: MoverInternals): ShardMover {
  if (options === null || typeof options !== 'object')
    throw new ShardingOptionsError('options', 'an options object is required')
  if (typeof options.control?.getExecutor !== 'function')
    throw new ShardingOptionsError('control', 'a Kysely instance is required')
  if (typeof options.store?.load !== 'function')
    throw new ShardingOptionsError('store', 'a ShardMapStore is required')
  if (!options.shards || Object.keys(options.shards).length === 0)
    throw new ShardingOptionsError('shards', 'name the shards')
  if (!Array.isArray(options.tables) || options.tables.length === 0)
    throw new ShardingOptionsError('tables', 'list the sharded tables: { name, shardKey, primaryKey }')
  for (const table of options.tables) checkTable(table)
  if (options.chunkSize !== undefined && (!Number.isSafeInteger(options.chunkSize) || options.chunkSize < 1))
    throw new ShardingOptionsError('chunkSize', 'must be an integer >= 1')
  return new Mover(options, internals)
}
