export { retryDelayMs } from './backoff.js'
export { DEFAULT_PREFIX, type RedisConnection } from './connection.js'
export {
  type CreateDeadLetterQueueOptions,
  createDeadLetterQueue,
  type DeadLetterFilter,
  type DeadLetterQueue,
  type ListDeadLettersOptions,
  type RedriveOptions,
  type RedriveResult,
} from './dead-letter-queue.js'
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
  versionedJobName,
} from './define-job.js'
export {
  DeadLetterNotFoundError,
  EnqueueError,
  EnqueueTimeoutError,
  InvalidOptionsError,
  InvalidPayloadError,
  JobCancelledError,
  JobsError,
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
export {
  type CreateOutboxOptions,
  createOutbox,
  DEFAULT_OUTBOX_TABLE,
  type Outbox,
  type OutboxEnqueued,
} from './outbox.js'
export { type CreateOutboxRelayOptions, createOutboxRelay, type OutboxRelay } from './outbox-relay.js'
export {
  type CancelOutcome,
  type CreateProducerOptions,
  createProducer,
  type EnqueuedJob,
  type Producer,
  type ScheduleOptions,
} from './producer.js'
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
