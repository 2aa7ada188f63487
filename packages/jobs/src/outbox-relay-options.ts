import type { Kysely } from 'kysely'
import type { KeyPrefixOptions, RedisConnection } from './connection.js'
import type { Logger } from './logger.js'
import type { MetricsHook } from './metrics.js'

export interface CreateOutboxRelayOptions<DB> extends KeyPrefixOptions {
  /** Kysely instance on the database that holds the outbox table. */
  db: Kysely<DB>
  /** Redis the jobs go to. */
  connection: RedisConnection
  /** @default 'scale_jobs_outbox' */
  table?: string
  /**
   * Rows moved per transaction.
   * @default 500
   */
  batchSize?: number
  /**
   * Wait between polls when the outbox was empty (a full batch polls again at once).
   * @default 200
   */
  pollIntervalMs?: number
  /**
   * How long a batch's jobs stay deduplicated by a marker in Redis when the relay dies between
   * adding them and committing: a relay that re-adds the batch within this window adds nothing,
   * even if the jobs have already run and been removed by `removeOnComplete`. Markers of committed
   * batches are deleted at once; only a crashed batch's markers live this long.
   * @default 86_400_000 (one day)
   */
  dedupWindowMs?: number
  /**
   * Longest one batch's add to Redis may take. A Redis that is down or frozen fails the batch
   * with `OutboxRelayError` (its cause an `EnqueueTimeoutError`) instead of holding the batch's
   * row locks forever: the transaction rolls back, the rows stay and are retried, and an add that
   * lands late is deduplicated by the job IDs. Also bounds `close()`.
   * @default 10_000
   */
  enqueueTimeoutMs?: number
  /** pino-compatible logger. @default silent */
  logger?: Logger
  /**
   * Metrics hook: `jobs_outbox_relayed_total` (label `queue`) and `jobs_outbox_batch_errors_total`.
   * See {@link MetricsHook}.
   * @default none
   */
  metrics?: MetricsHook
  /**
   * Called after a batch is in BullMQ and before its rows are deleted (for metrics; must not throw).
   * @default none
   */
  onBatchAdded?: (batch: { readonly jobIds: readonly string[] }) => void
}

/** Moves committed outbox rows to BullMQ. Run one or several per deployment. */
export interface OutboxRelay {
  /** Starts the polling loop. Throws `JobsClosedError` once closed. */
  start(): void
  /** Moves one batch; returns how many rows it moved. Throws `JobsClosedError` once closed. */
  relayOnce(): Promise<number>
  /** Rows moved since start. */
  relayed(): number
  /**
   * Stops polling after the current batch and closes the BullMQ queues (and the Redis client it
   * created, if any). Bounded by `enqueueTimeoutMs`; idempotent (returns the same promise).
   */
  close(): Promise<void>
  /** @deprecated use close(); removed in the next minor */
  stop(): Promise<void>
}
