import type { StandardSchemaV1 } from '@standard-schema/spec'
import type { KeepJobs } from 'bullmq'
import { JobsOptionsError } from './errors.js'

/** How a failing job is retried. Delays grow as `baseDelayMs * 2^(attempt-1)`, capped, with jitter. */
export interface RetryOptions {
  /**
   * Total runs allowed, the first included; after the last failure the job is dead-lettered.
   * @default 3
   */
  attempts?: number
  /**
   * Delay before the first retry, in ms.
   * @default 1000
   */
  baseDelayMs?: number
  /**
   * Upper bound of any one delay, in ms.
   * @default 3_600_000
   */
  maxDelayMs?: number
  /**
   * Share of each delay that is random, 0..1: the delay is drawn from
   * `[d * (1 - jitter), d]`. Below 1 the delays still grow from one attempt to the next, while
   * workers that failed together (a database outage) do not retry in lockstep.
   * @default 0.5
   */
  jitter?: number
}

/** What a handler gets besides its payload. */
export interface JobContext {
  /** BullMQ job ID (the outbox row's `o<id>`, an idempotency key's ID, or BullMQ's counter). */
  readonly id: string
  readonly name: string
  readonly queue: string
  /** 1 for the first run, 2 for the first retry, ... */
  readonly attempt: number
  /** The payload version the producer wrote (before migrations ran). */
  readonly version: number
  /**
   * Aborted (its `reason` says why) when the worker's shutdown deadline passes while this job runs
   * (`ShutdownDeadlineError`: the job runs again elsewhere), when the run exceeds the job's
   * `timeoutMs` (`JobTimeoutError`) or when the job is cancelled (`JobCancelledError`). Pass it to
   * fetch/pg/etc. so the work really stops.
   */
  readonly signal: AbortSignal
  /**
   * Reports progress (a number such as a percentage, or any JSON object): BullMQ's job progress,
   * shown by `queue.getJob(id)`, QueueEvents and dashboards such as bull-board.
   */
  progress(value: number | object): Promise<void>
  /** Appends a line to the job's log (BullMQ `queue.getJobLogs(id)`), kept as long as the job. */
  log(line: string): Promise<void>
  /** For the parent of a flow: its children's results, keyed by BullMQ child key (`<prefix>:<queue>:<id>`). */
  childrenValues<T = unknown>(): Promise<Record<string, T>>
}

export type JobHandler<Payload, Result> = (payload: Payload, context: JobContext) => Promise<Result> | Result

/** Migrates a payload of version `k` to version `k + 1`. */
export type PayloadMigration = (payload: unknown) => unknown

export interface DefineJobOptions<Schema extends StandardSchemaV1, Result> {
  /** Job name, unique within its queue. Letters, digits, `_ . -`. */
  name: string
  /** Any Standard Schema validator (zod 3.24+, valibot 1, arktype 2, ...). Checked at enqueue and again before the handler runs. */
  schema: Schema
  /** The work. Receives the validated (and transformed) payload. */
  handler: JobHandler<StandardSchemaV1.InferOutput<Schema>, Result>
  /**
   * BullMQ queue the job goes to; several jobs may share one.
   * @default name
   */
  queue?: string
  /** Retry policy; see {@link RetryOptions}. */
  retry?: RetryOptions
  /**
   * Version of the payload shape. Raise it when the schema changes incompatibly and add a
   * migration from the previous version; jobs already queued are upgraded before validation.
   * @default 1
   */
  version?: number
  /**
   * `migrations[k]` upgrades a version-`k` payload to version `k + 1`.
   * @default {}
   */
  migrations?: Readonly<Record<number, PayloadMigration>>
  /**
   * BullMQ `removeOnComplete` for this job (`true`, a count, or `{ age, count }`).
   * @default { count: 10_000 } — bounded, yet long enough for idempotency keys to deduplicate
   */
  removeOnComplete?: boolean | number | KeepJobs
  /**
   * BullMQ `removeOnFail`. Failed jobs are also copied to the dead-letter queue.
   * @default { count: 10_000 }
   */
  removeOnFail?: boolean | number | KeepJobs
  /**
   * Longest one run may take. Then the handler's `signal` is aborted with `JobTimeoutError` and
   * the attempt fails with it (retried while attempts remain, then dead-lettered). A handler that
   * ignores its signal keeps running in the background; its result is discarded.
   * @default none
   */
  timeoutMs?: number | undefined
  /**
   * Check payloads against the schema (at enqueue, as JSON will carry them, and before the
   * handler runs). `false` keeps the schema for types only: no check, no JSON round trip, the
   * handler gets whatever JSON made of the payload. For hot paths whose producers you trust.
   * @default true
   */
  validate?: boolean | undefined
}

/** A job type: its name, schema, handler and policies. Pass it to a producer to enqueue and to a worker to run. */
export interface JobDefinition<Input = unknown, Output = Input, Result = unknown> {
  readonly kind: 'scale-job'
  readonly name: string
  readonly queue: string
  readonly version: number
  readonly schema: StandardSchemaV1<Input, Output>
  // Method syntax on purpose: its parameter is checked bivariantly, so a definition of any payload
  // is assignable to `AnyJobDefinition` (a list of different jobs for one worker) without `any`.
  handler(payload: Output, context: JobContext): Promise<Result> | Result
  readonly retry: Readonly<Required<RetryOptions>>
  readonly migrations: Readonly<Record<number, PayloadMigration>>
  readonly removeOnComplete: boolean | number | KeepJobs
  readonly removeOnFail: boolean | number | KeepJobs
  readonly timeoutMs: number | undefined
  readonly validate: boolean
}

/** Any job definition, whatever its payload type. */
export type AnyJobDefinition = JobDefinition<unknown, unknown, unknown>

/** The payload type `enqueue` accepts for a definition. */
export type PayloadOf<Job> = Job extends JobDefinition<infer Input, unknown, unknown> ? Input : never

const NAME = /^[A-Za-z0-9_.-]+$/

/**
 * Defines a typed job: its payload schema (checked when enqueued and again before it runs), its
 * handler, retry policy and payload version.
 *
 * @example
 * ```ts
 * import { z } from 'zod'
 * import { defineJob } from '@scale/jobs'
 *
 * export const resizeImage = defineJob({
 *   name: 'resize-image',
 *   schema: z.object({ photoId: z.string(), width: z.number().int().positive() }),
 *   retry: { attempts: 5, baseDelayMs: 2_000 },
 *   async handler({ photoId, width }, { signal }) {
 *     await resize(photoId, width, { signal })
 *   },
 * })
 * ```
 */
export function defineJob<Schema extends StandardSchemaV1, Result = unknown>(
  options: DefineJobOptions<Schema, Result>,
): JobDefinition<StandardSchemaV1.InferInput<Schema>, StandardSchemaV1.InferOutput<Schema>, Result> {
  const queue = options.queue ?? options.name
  if (!NAME.test(options.name)) {
    throw new JobsOptionsError(
      'name',
      `job name "${options.name}" must match ${NAME} (BullMQ keys and IDs use ':' and '@')`,
    )
  }
  if (!NAME.test(queue)) throw new JobsOptionsError('queue', `queue name "${queue}" must match ${NAME}`)
  const version = options.version ?? 1
  if (!Number.isInteger(version) || version < 1) {
    throw new JobsOptionsError(
      'version',
      `job "${options.name}": version must be a positive integer, got ${version}`,
    )
  }
  const retry = {
    attempts: options.retry?.attempts ?? 3,
    baseDelayMs: options.retry?.baseDelayMs ?? 1_000,
    maxDelayMs: options.retry?.maxDelayMs ?? 3_600_000,
    jitter: options.retry?.jitter ?? 0.5,
  }
  if (!Number.isInteger(retry.attempts) || retry.attempts < 1) {
    throw new JobsOptionsError(
      'retry.attempts',
      `job "${options.name}": retry.attempts must be an integer >= 1`,
    )
  }
  if (retry.jitter < 0 || retry.jitter > 1) {
    throw new JobsOptionsError('retry.jitter', `job "${options.name}": retry.jitter must be within 0..1`)
  }
  if (options.timeoutMs !== undefined && !(options.timeoutMs > 0 && Number.isFinite(options.timeoutMs))) {
    throw new JobsOptionsError(
      'timeoutMs',
      `job "${options.name}": timeoutMs must be a finite number above 0`,
    )
  }
  if (typeof options.schema?.['~standard']?.validate !== 'function') {
    throw new JobsOptionsError(
      'schema',
      `job "${options.name}": schema must implement Standard Schema v1 ('~standard')`,
    )
  }
  return Object.freeze({
    kind: 'scale-job',
    name: options.name,
    queue,
    version,
    schema: options.schema,
    handler: options.handler,
    retry: Object.freeze(retry),
    migrations: Object.freeze({ ...(options.migrations ?? {}) }),
    removeOnComplete: options.removeOnComplete ?? { count: 10_000 },
    removeOnFail: options.removeOnFail ?? { count: 10_000 },
    timeoutMs: options.timeoutMs,
    validate: options.validate ?? true,
  })
}

/**
 * The BullMQ job name carries the payload version: `resize-image` is version 1 (so jobs added by
 * plain BullMQ producers are read as version 1), `resize-image@v3` is version 3. Keeping the
 * version out of the payload leaves `job.data` exactly what the producer sent.
 */
export function versionedJobName(name: string, version: number): string {
  return version === 1 ? name : `${name}@v${version}`
}

/** @internal inverse of {@link versionedJobName}. */
export function parseJobName(jobName: string): { name: string; version: number } {
  const at = jobName.lastIndexOf('@v')
  if (at > 0) {
    const version = Number(jobName.slice(at + 2))
    if (Number.isInteger(version) && version >= 1) return { name: jobName.slice(0, at), version }
  }
  return { name: jobName, version: 1 }
}
