export type { KeyPrefixOptions, RedisConnection } from './connection.js'
export type {
  CreateDeadLetterQueueOptions,
  DeadLetterFilter,
  DeadLetterQueue,
  ListDeadLettersOptions,
  RedriveOptions,
  RedriveResult,
} from './dead-letter-options.js'
export { createDeadLetterQueue } from './dead-letter-queue.js'
export type { DeadLetterEntry } from './dead-letter-store.js'
export {
  type AnyJobDefinition,
  type DefineJobOptions,
  defineJob,
  type JobContext,
  type JobDefinition,
  type JobHandler,
  type PayloadMigration,
  type PayloadOf,
  type RetryOptions,
} from './define-job.js'
// Deprecated: internal names exported before; removed in the next minor.
export { DEFAULT_OUTBOX_TABLE, DEFAULT_PREFIX, versionedJobName } from './deprecated.js'
export {
  DeadLetterNotFoundError,
  EnqueueError,
  EnqueueTimeoutError,
  /** @deprecated use JobsOptionsError; removed in the next minor */
  InvalidOptionsError,
  InvalidPayloadError,
  JobCancelledError,
  JobsClosedError,
  JobsError,
  type JobsErrorCode,
  JobsOptionsError,
  JobTimeoutError,
  MissingMigrationError,
  OutboxRelayError,
  type PayloadIssue,
  PermanentError,
  ShutdownDeadlineError,
  UnknownJobError,
  UnsupportedVersionError,
} from './errors.js'
export { type EnqueuedFlow, type FlowNode, flowJob } from './flows.js'
export type { EnqueueOptions } from './job-options.js'
export type { Logger } from './logger.js'
export type { MetricsHook } from './metrics.js'
export {
  type CreateOutboxOptions,
  createOutbox,
  type Outbox,
  type OutboxEnqueued,
} from './outbox.js'
export { createOutboxRelay } from './outbox-relay.js'
export type { CreateOutboxRelayOptions, OutboxRelay } from './outbox-relay-options.js'
export { createProducer } from './producer.js'
export type {
  CancelOutcome,
  CreateProducerOptions,
  EnqueuedJob,
  Producer,
  ScheduleOptions,
} from './producer-options.js'
export {
  type CounterLike,
  type HistogramLike,
  type PromClientCountersLike,
  type PromClientMetricsOptions,
  promClientMetrics,
} from './prom-client-metrics.js'
export {
  type GaugeLike,
  type PromClientLike,
  type RegisterScalingMetricsOptions,
  registerScalingMetrics,
} from './prometheus.js'
export {
  type CreateScalingSignalOptions,
  createScalingSignal,
  type ScalingSignal,
  type ScalingSignalReader,
} from './scaling-signal.js'
export { type Closable, type ShutdownOnSignalOptions, shutdownOnSignal } from './shutdown-on-signal.js'
export type { StandardSchemaV1 } from './standard-schema.js'
export { type SuggestWorkersInput, suggestWorkers } from './suggest-workers.js'
export { createWorker } from './worker.js'
export type {
  CreateWorkerOptions,
  JobWorker,
  ShutdownOptions,
  ShutdownReport,
  WorkerEvent,
} from './worker-options.js'
