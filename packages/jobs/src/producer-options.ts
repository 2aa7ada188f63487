import { getNextMillis, type Queue, type Telemetry } from 'bullmq'
import type { KeyPrefixOptions, RedisConnection } from './connection.js'
import type { AnyJobDefinition, JobDefinition } from './define-job.js'
import { JobsOptionsError } from './errors.js'
import type { EnqueuedFlow, FlowNode } from './flows.js'
import type { EnqueueOptions } from './job-options.js'
import type { Logger } from './logger.js'
import type { MetricsHook } from './metrics.js'

/** What `enqueue` returns. */
export interface EnqueuedJob {
  /** BullMQ job ID. For an idempotency key it is the same on every enqueue of that key. */
  readonly id: string
  readonly name: string
  readonly queue: string
}

/**
 * What `cancel` did: `removed` (it was waiting or delayed and will not run), `signalled` (it was
 * running; its worker aborts it, the attempt fails with `JobCancelledError`, no retries),
 * `not-listening` (running, but no worker of this package with `cancellation` listens),
 * `finished` (already completed or failed) or `not-found`.
 */
export type CancelOutcome = 'removed' | 'signalled' | 'not-listening' | 'finished' | 'not-found'

/** A repeat rule for `schedule`, passed to BullMQ's job schedulers. */
export interface ScheduleOptions {
  /** Run every this many ms (exclusive with `pattern`). */
  everyMs?: number
  /** Cron pattern, e.g. `'0 * * * *'` (exclusive with `everyMs`). */
  pattern?: string
  /** Time zone of the cron pattern. @default the worker's */
  tz?: string
  /** Stop after this many runs. @default unlimited */
  limit?: number
}

export interface CreateProducerOptions extends KeyPrefixOptions {
  /** The user's ioredis instance (Redis or Cluster) or options for one. */
  connection: RedisConnection
  /**
   * Longest an `enqueue`, `enqueueMany`, `schedule`, `unschedule` or `cancel` waits for Redis
   * before it rejects with `EnqueueTimeoutError`. On by default so that a web request never hangs
   * on a Redis that is down or frozen (with `maxRetriesPerRequest: null` ioredis queues commands
   * forever). `Infinity` turns it off.
   * @default 5_000
   */
  enqueueTimeoutMs?: number
  /**
   * OpenTelemetry through BullMQ's telemetry interface, e.g. `new BullMQOtel('web')` from
   * `bullmq-otel`: a span per enqueue, and the active trace context stored in the job so that the
   * worker's span of its run joins the same trace.
   * @default none
   */
  telemetry?: Telemetry
  /** pino-compatible logger (only the metrics hook's failure is logged). @default silent */
  logger?: Logger
  /**
   * Metrics hook: `jobs_enqueued_total` and `jobs_enqueue_errors_total` (labels `queue`, `job`,
   * and `code` for errors). See {@link MetricsHook}.
   * @default none
   */
  metrics?: MetricsHook
}

/** Enqueues typed jobs. One per process is enough; it keeps one BullMQ `Queue` per queue name. */
export interface Producer {
  /** Validates `payload` against the job's schema (throws `InvalidPayloadError`, enqueueing nothing) and adds the job. */
  enqueue<Input, Output, Result>(
    job: JobDefinition<Input, Output, Result>,
    payload: Input,
    options?: EnqueueOptions,
  ): Promise<EnqueuedJob>
  /** Validates every payload first (all or nothing), then adds them in one round trip. */
  enqueueMany<Input, Output, Result>(
    job: JobDefinition<Input, Output, Result>,
    items: ReadonlyArray<{ payload: Input; options?: EnqueueOptions }>,
  ): Promise<EnqueuedJob[]>
  /** Creates or replaces a repeatable job (BullMQ job scheduler) with a validated payload. */
  schedule<Input, Output, Result>(
    job: JobDefinition<Input, Output, Result>,
    schedulerId: string,
    repeat: ScheduleOptions,
    payload: Input,
  ): Promise<void>
  /**
   * Enqueues a flow (BullMQ `FlowProducer`): every payload is validated first (all or nothing),
   * then the whole tree is added atomically. A parent runs once all its children have completed.
   */
  enqueueFlow(root: FlowNode): Promise<EnqueuedFlow>
  /** Cancels a job by ID: removes it if it waits, signals its worker if it runs. See {@link CancelOutcome}. */
  cancel(job: AnyJobDefinition, id: string, reason?: string): Promise<CancelOutcome>
  /** Removes a repeatable job; returns whether it existed. */
  unschedule(job: AnyJobDefinition, schedulerId: string): Promise<boolean>
  /** The BullMQ `Queue` for a queue name (escape hatch: counts, pause, clean). */
  queue(name: string): Queue
  /**
   * Closes the BullMQ queues (the user's Redis instance stays open). Bounded by `enqueueTimeoutMs`;
   * idempotent. Later calls throw `JobsClosedError`.
   */
  close(): Promise<void>
}

/** @internal Refuses a repeat rule BullMQ would fail on, before anything is written. */
export function checkRepeat(schedulerId: string, repeat: ScheduleOptions): void {
  if ((repeat.everyMs === undefined) === (repeat.pattern === undefined)) {
    throw new JobsOptionsError('repeat', `schedule "${schedulerId}": give exactly one of everyMs or pattern`)
  }
  if (repeat.everyMs !== undefined && !(Number.isInteger(repeat.everyMs) && repeat.everyMs > 0)) {
    throw new JobsOptionsError(
      'repeat.everyMs',
      `schedule "${schedulerId}": everyMs must be a positive integer, got ${repeat.everyMs}`,
    )
  }
  if (repeat.limit !== undefined && !(Number.isInteger(repeat.limit) && repeat.limit > 0)) {
    throw new JobsOptionsError(
      'repeat.limit',
      `schedule "${schedulerId}": limit must be a positive integer, got ${repeat.limit}`,
    )
  }
  if (repeat.pattern !== undefined) {
    try {
      // BullMQ's own parser: what it accepts here it accepts when the scheduler fires.
      getNextMillis(Date.now(), {
        pattern: repeat.pattern,
        ...(repeat.tz !== undefined && { tz: repeat.tz }),
      })
    } catch (error) {
      throw new JobsOptionsError(
        'repeat.pattern',
        `schedule "${schedulerId}": invalid cron pattern "${repeat.pattern}"${repeat.tz ? ` (tz ${repeat.tz})` : ''}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      )
    }
  }
}
