import type { Telemetry, Worker } from 'bullmq'
import type { KeyPrefixOptions, RedisConnection } from './connection.js'
import type { AnyJobDefinition } from './define-job.js'
import type { Logger } from './logger.js'
import type { MetricsHook } from './metrics.js'

/** Something that happened in a worker, for logs, metrics and tests. */
export type WorkerEvent =
  | { type: 'completed'; queue: string; jobId: string; name: string; attempt: number }
  | { type: 'retry-scheduled'; queue: string; jobId: string; name: string; attempt: number; delayMs: number }
  | { type: 'dead-lettered'; queue: string; jobId: string; name: string; reason: string; permanent: boolean }
  | { type: 'returned'; queue: string; jobId: string; name: string }
  | { type: 'cancelled'; queue: string; jobId: string; name: string }
  | { type: 'shutdown'; signal: string | undefined; finished: number; returned: number; elapsedMs: number }

export interface ShutdownOptions {
  /**
   * Signals that start a graceful shutdown, e.g. `['SIGTERM', 'SIGINT']`. None by default: the
   * worker installs no handler and never exits your process unless asked. Or call
   * `shutdownOnSignal([worker, relay])` once for all of a process's workers and relays.
   * @default []
   */
  signals?: readonly NodeJS.Signals[]
  /**
   * Time from a signal or `close()` until the worker is closed. In-flight jobs may keep running
   * until a margin before it (a fifth of the deadline, at most 1 s); those still running then are
   * handed back to the queue (their `signal` is aborted) and run again elsewhere. Keep it under
   * your orchestrator's kill grace (Kubernetes: 30 s).
   * @default 25_000
   */
  deadlineMs?: number
  /**
   * With `signals`: after a signal-initiated shutdown, end the process (`process.exit(0)`, or `1`
   * if the shutdown itself failed or had not finished by `deadlineMs`). `false` leaves that to you.
   * @default true
   */
  exitProcess?: boolean
}

export interface CreateWorkerOptions extends KeyPrefixOptions {
  /** The user's ioredis instance (created with `maxRetriesPerRequest: null`) or options for one. */
  connection: RedisConnection
  /** The job definitions this worker runs; one BullMQ worker is started per distinct queue. */
  jobs: readonly AnyJobDefinition[]
  /**
   * Jobs run at once per queue in this process.
   * @default 1
   */
  concurrency?: number
  /**
   * How long a job's lock lives without renewal (renewed at half of it while the job runs). A
   * worker killed with SIGKILL stops renewing; after this its jobs count as stalled.
   * @default 30_000
   */
  lockDurationMs?: number
  /**
   * How often this worker looks for stalled jobs (locks expired) and puts them back in the queue.
   * A job of a killed worker waits at most `lockDurationMs + stalledIntervalMs` to run again.
   * @default 30_000
   */
  stalledIntervalMs?: number
  /**
   * How often one job may be recovered from a stall before it is failed (and dead-lettered) as a
   * job that keeps killing its worker.
   * @default 3
   */
  maxStalledCount?: number
  /** Graceful shutdown; see {@link ShutdownOptions}. */
  shutdown?: ShutdownOptions
  /**
   * Copy jobs that failed for good to the dead-letter queue.
   * @default true
   */
  deadLetter?: boolean
  /**
   * Start taking jobs at once.
   * @default true
   */
  autorun?: boolean
  /**
   * Turn on BullMQ's metrics: completions counted atomically with the queue state (the scaling
   * signal's rates are then exact at every read, not only within `statsIntervalMs`) and a
   * per-minute history for dashboards (`queue.getMetrics`). Costs about 3 % throughput: more
   * Redis work per job.
   * @default false
   */
  bullmqMetrics?: boolean
  /**
   * Metrics hook: `jobs_completed_total`, `jobs_retries_total`, `jobs_dead_lettered_total`,
   * `jobs_cancelled_total`, `jobs_returned_total` (labels `queue`, `job`) and `jobs_run_seconds`
   * (observed, label `queue`). See {@link MetricsHook}; `promClientMetrics` feeds prom-client.
   *
   * Deprecated: a boolean, the old meaning of this option (BullMQ's metrics), still works until
   * the next minor; use `bullmqMetrics` instead. (Not tagged `@deprecated`: that would strike
   * through the hook too.)
   * @default none
   */
  metrics?: MetricsHook | boolean
  /**
   * How often finished-job counters for the scaling signal are written to Redis.
   * @default 1_000
   */
  statsIntervalMs?: number
  /**
   * Rate limit of each of this worker's queues: at most `max` jobs start per `durationMs`. It is
   * BullMQ's limiter, kept in Redis, so it holds across all workers of a queue (give them all the
   * same limit). Per-group limits (a key per tenant) are a BullMQ Pro feature, not offered here.
   * @default none
   */
  limiter?: { max: number; durationMs: number }
  /**
   * Listen for `producer.cancel(job, id)` of jobs running here (one more Redis connection, in
   * subscriber mode). `false` saves the connection; cancels then only remove waiting jobs.
   * @default true
   */
  cancellation?: boolean
  /**
   * OpenTelemetry through BullMQ's telemetry interface (e.g. `new BullMQOtel('worker')` from
   * `bullmq-otel`): a span per run, child of the trace the job was enqueued in; the handler runs
   * inside it, so its own spans (HTTP, SQL) join that trace.
   * @default none
   */
  telemetry?: Telemetry
  /** pino-compatible logger. @default silent */
  logger?: Logger
  /** Called for every {@link WorkerEvent}; must not throw. @default none */
  onEvent?: (event: WorkerEvent) => void
}

/** What a shutdown did. */
export interface ShutdownReport {
  /** In-flight jobs that finished (completed or failed) before the deadline. */
  readonly finished: number
  /** IDs of in-flight jobs handed back to the queue at the deadline. */
  readonly returned: readonly string[]
  readonly elapsedMs: number
}

/** Runs typed jobs. */
export interface JobWorker {
  /** The queues this worker takes jobs from. */
  readonly queues: readonly string[]
  /** The underlying BullMQ workers (escape hatch: pause, events). */
  readonly bullWorkers: readonly Worker[]
  /** Jobs running now. */
  inFlight(): number
  /** Starts taking jobs (when created with `autorun: false`). */
  run(): void
  /**
   * Cancels a job running in this worker: its `signal` is aborted with `JobCancelledError` and the
   * attempt fails without retries. Returns whether it was running here. (`producer.cancel` reaches
   * every worker.)
   */
  cancel(jobId: string, reason?: string): boolean
  /**
   * Stops taking jobs, lets in-flight jobs finish until the deadline, hands back those still
   * running, then closes. Safe to call more than once (returns the same promise).
   */
  close(options?: { deadlineMs?: number }): Promise<ShutdownReport>
}
