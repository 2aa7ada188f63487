import { type Kysely, sql } from 'kysely'
import {
  ShardingClosedError,
  ShardingOptionsError,
  ShardMapInvalidError,
  ShardMapStaleError,
  ShardMoveError,
  UnknownShardError,
} from '../errors.js'
import { Observability, SOURCE } from '../observability.js'
import { planRebalance, type RebalancePlan } from '../plan.js'
import type { ShardMap } from '../shard-map.js'
import { checkTable, installShard } from '../shard-sql.js'
import { deleteChunk, type TableShape, tableShape } from './bucket-rows.js'
import { CATCH_UP_ROUNDS, MovePhases } from './move-phases.js'
import { type MoveState, MoveStateStore } from './move-state.js'
import type {
  MoveProgress,
  MoveReport,
  MoverInternals,
  ShardMover,
  ShardMoverOptions,
  VerifyReport,
} from './mover-types.js'

// biome-ignore lint/suspicious/noExplicitAny: shards are addressed by table name, not schema type
type AnyKysely = Kysely<any>

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

class Mover implements ShardMover {
  readonly #o: Required<Pick<ShardMoverOptions, 'chunkSize' | 'cleanupDelayMs' | 'fenceLockTimeoutMs'>> &
    ShardMoverOptions
  readonly #states: MoveStateStore
  readonly #obs: Observability
  readonly #internals: MoverInternals
  readonly #phases: MovePhases
  #closed = false

  constructor(options: ShardMoverOptions, internals: MoverInternals) {
    this.#o = {
      ...options,
      chunkSize: options.chunkSize ?? 500,
      cleanupDelayMs: options.cleanupDelayMs ?? 5_000,
      fenceLockTimeoutMs: options.fenceLockTimeoutMs ?? 5_000,
    }
    this.#states = new MoveStateStore(options.control)
    this.#obs = new Observability(options.logger, options.metrics, SOURCE)
    this.#internals = internals
    this.#phases = new MovePhases({
      tables: options.tables,
      chunkSize: this.#o.chunkSize,
      fenceLockTimeoutMs: this.#o.fenceLockTimeoutMs,
      states: this.#states,
      obs: this.#obs,
      progress: (event) => this.#progress(event),
      skipCatchUpAndVerify: internals.skipCatchUpAndVerify === true,
      catchUpRounds: internals.catchUpRounds ?? CATCH_UP_ROUNDS,
    })
  }

  #shard(name: string): AnyKysely {
    if (this.#closed) throw new ShardingClosedError('moveBucket')
    const db = this.#o.shards[name]
    if (!db) throw new UnknownShardError(name, Object.keys(this.#o.shards))
    return db
  }

  async #map(): Promise<ShardMap> {
    const map = await this.#o.store.load()
    if (!map)
      throw new ShardMapInvalidError(
        'the store holds no shard map yet: save the first one (scale-shard init --shards s1,s2,... or store.save(createShardMap(...)))',
      )
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

    try {
      if (step === 'copying') {
        await this.#phases.markMoving(source, destination, bucket)
        const fresh = move.copyTable === 0 && move.copiedKey === null
        if (fresh) await this.#phases.clearTarget(destination, map, bucket, shapes)
        counts.rowsCopied += await this.#phases.copy(source, destination, map, move, shapes)
        await this.#internals.afterStep?.('copying', bucket)
        step = 'catching-up'
        await this.#states.update(bucket, { step })
      }
      if (step === 'catching-up') {
        if (!this.#internals.skipCatchUpAndVerify)
          counts.changesApplied += await this.#phases.catchUp(source, destination, map, bucket, shapes, false)
        fencedAt = await this.#phases.fence(source, destination, map, bucket, shapes, counts)
        step = 'fenced'
        await this.#states.update(bucket, { step, fencedAt })
        await this.#internals.afterStep?.('fenced', bucket)
      }
      if (step === 'fenced') {
        await this.#phases.waitForOlderTransactions(source)
        if (!this.#internals.skipCatchUpAndVerify) {
          counts.changesApplied += await this.#phases.catchUp(source, destination, map, bucket, shapes, true)
          counts.checksumChunks += await this.#phases.verifyCopy(source, destination, map, bucket, shapes)
        }
      }
    } catch (error) {
      // Keys that collide with another bucket's rows on the target: the move can never finish,
      // so it is undone (capture and fence off, partial copy deleted) rather than left stuck.
      if (error instanceof ShardMoveError && error.context.conflict === 'primary-key')
        await this.#phases.abandon(source, destination, map, bucket, shapes)
      throw error
    }
    if (step === 'fenced') {
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
