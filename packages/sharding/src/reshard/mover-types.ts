import type { Kysely } from 'kysely'
import type { ShardMapStore } from '../map-store.js'
import type { Logger, MetricsHook } from '../observability.js'
import type { RebalancePlan } from '../plan.js'
import type { ShardedTable } from '../shard-sql.js'
import type { MoveState, MoveStep } from './move-state.js'

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
   * Wait between publishing the new epoch and deleting the source's copy. Routers reload a map
   * older than their `maxMapAgeMs` before routing, so keep this above it: no router can then read
   * or update the source's copy after it is gone.
   * @default 5000
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
  /** Full catch-up rounds before giving up on converging (default `CATCH_UP_ROUNDS`). */
  catchUpRounds?: number
  afterStep?: (step: MoveStep, bucket: number) => Promise<void>
}
