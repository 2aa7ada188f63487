export type { AllShards, SelectLike } from './all-shards.js'
export {
  ClockBackwardsError,
  GlobalIdRangeError,
  GlobalIdStoreError,
  InvalidGlobalIdError,
  InvalidShardKeyError,
  ShardingClosedError,
  ShardingError,
  type ShardingErrorCode,
  type ShardingErrorContext,
  ShardingOptionsError,
  ShardKeyMissingError,
  ShardMapInvalidError,
  ShardMapStaleError,
  ShardMoveError,
  ShardUnreachableError,
  UnknownShardError,
  UnmergeableQueryError,
} from './errors.js'
export { FENCED_SQLSTATE } from './fence.js'
export { bucketOfId, DEFAULT_ID_EPOCH_MS, timestampOfId } from './global-id-layout.js'
export { createGlobalIds, type GlobalIds, type GlobalIdsOptions } from './global-ids.js'
export type { KeyBatch, ShardGroup } from './key-batch.js'
export {
  fileMapStore,
  type NotificationClient,
  type PostgresMapStoreOptions,
  postgresMapStore,
  type ShardMapStore,
} from './map-store.js'
export type { Logger, MetricsHook } from './observability.js'
export type { ShardedKyselyOptions } from './options.js'
export { type BucketMove, planRebalance, type RebalancePlan } from './plan.js'
export {
  type CounterLike,
  type HistogramLike,
  type PromClientLike,
  type PromClientMetricsOptions,
  promClientMetrics,
} from './prometheus.js'
export type { MoveState, MoveStep } from './reshard/move-state.js'
export { createShardMover } from './reshard/mover.js'
export type {
  MoveProgress,
  MoveReport,
  ShardMover,
  ShardMoverOptions,
  VerifyReport,
} from './reshard/mover-types.js'
export type { ScatterOptions, ScatterResult } from './scatter.js'
export { integerShardKey, type ShardKey } from './shard-key.js'
export {
  type CreateShardMapOptions,
  createShardMap,
  type HotKey,
  MAX_BUCKETS,
  ShardMap,
  type ShardMapData,
  type ShardStrategy,
} from './shard-map.js'
export type { ShardedTable } from './shard-sql.js'
export { createShardedKysely, type ShardedKysely } from './sharded-kysely.js'
