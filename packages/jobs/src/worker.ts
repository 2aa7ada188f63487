import type { Cluster, Redis } from 'ioredis'
import { bullConnection, cancelChannel, commandClient, keyPrefixOf } from './connection.js'
import { JobsClosedError, JobsOptionsError } from './errors.js'
import { type Logger, silentLogger } from './logger.js'
import { countEvent, Metrics } from './metrics.js'
import { JobRunner } from './run-job.js'
import { shutdownOnSignal } from './shutdown-on-signal.js'
import { TolerantWorker } from './tolerant-worker.js'
import { WorkerDefinitions } from './worker-definitions.js'
import type { CreateWorkerOptions, JobWorker, ShutdownReport, WorkerEvent } from './worker-options.js'
import { shutDownWorker } from './worker-shutdown.js'
import { WorkerStats } from './worker-stats.js'

/**
 * Starts a worker for typed jobs: validates each payload before its handler runs, retries with
 * exponential backoff and jitter, dead-letters jobs that fail for good, recovers jobs of crashed
 * workers (BullMQ stalled checks), and shuts down gracefully on `close()` (or on the signals you
 * name in `shutdown.signals`).
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { createWorker } from '@scale/jobs'
 *
 * createWorker({
 *   connection: new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null }),
 *   jobs: [resizeImage],
 *   concurrency: 20,
 *   shutdown: { deadlineMs: 20_000, signals: ['SIGTERM', 'SIGINT'] },
 * })
 * ```
 */
export function createWorker(options: CreateWorkerOptions): JobWorker {
  return new TypedWorker(options)
}

/** The event reporter: the user's `onEvent` (errors swallowed) and the metrics hook. */
function eventReporter(
  onEvent: ((event: WorkerEvent) => void) | undefined,
  metrics: Metrics,
): { emit: (event: WorkerEvent) => void; listening: boolean } {
  const listening = onEvent !== undefined || metrics.enabled
  if (!listening) return { emit: () => {}, listening }
  return {
    emit: (event) => {
      if (metrics.enabled) countEvent(metrics, event)
      try {
        onEvent?.(event)
      } catch {}
    },
    listening,
  }
}

/** Wires BullMQ workers (one per queue) to the job runner, the cancel channel and shutdown. */
class TypedWorker implements JobWorker {
  readonly queues: readonly string[]
  readonly bullWorkers: readonly TolerantWorker[]
  readonly #keyPrefix: string
  readonly #runner: JobRunner
  readonly #client: Redis | Cluster
  readonly #ownsClient: boolean
  readonly #stats: WorkerStats
  readonly #logger: Logger
  readonly #emit: (event: WorkerEvent) => void
  readonly #deadlineMs: number
  /** Removes the handlers installed for `shutdown.signals`, if any were asked for. */
  readonly #removeSignalHandlers: () => void
  #signal: NodeJS.Signals | undefined
  /** Subscribed to the queues' cancel channels (see `producer.cancel`). */
  readonly #subscriber: Redis | Cluster | undefined
  #closing: Promise<ShutdownReport> | undefined

  constructor(options: CreateWorkerOptions) {
    this.#keyPrefix = keyPrefixOf(options.connection, options)
    const definitions = new WorkerDefinitions(options.jobs)
    const limiter = options.limiter
    if (limiter && !(Number.isInteger(limiter.max) && limiter.max > 0 && limiter.durationMs > 0)) {
      throw new JobsOptionsError('limiter', 'limiter needs an integer max > 0 and a durationMs > 0')
    }
    this.#logger = options.logger ?? silentLogger
    const metrics = new Metrics(
      typeof options.metrics === 'object' ? options.metrics : undefined,
      this.#logger,
    )
    const { emit, listening } = eventReporter(options.onEvent, metrics)
    this.#emit = emit
    // `metrics: true` meant BullMQ's metrics before the hook took the name (deprecated).
    const bullmqMetrics = options.bullmqMetrics ?? options.metrics === true
    this.#deadlineMs = options.shutdown?.deadlineMs ?? 25_000
    const { client, owned } = commandClient(options.connection)
    this.#client = client
    this.#ownsClient = owned
    this.#stats = new WorkerStats(client, this.#keyPrefix, options.statsIntervalMs ?? 1_000)
    const runner = new JobRunner({
      definitions,
      client,
      keyPrefix: this.#keyPrefix,
      deadLetter: options.deadLetter ?? true,
      logger: this.#logger,
      metrics,
      stats: this.#stats,
      emit,
      listening,
    })
    this.#runner = runner

    this.queues = definitions.queues
    this.bullWorkers = this.queues.map((queue) => {
      const worker: TolerantWorker = new TolerantWorker(
        queue,
        (job, token) => runner.run(worker, queue, job, token),
        {
          connection: bullConnection(options.connection, true),
          prefix: this.#keyPrefix,
          concurrency: options.concurrency ?? 1,
          lockDuration: options.lockDurationMs ?? 30_000,
          stalledInterval: options.stalledIntervalMs ?? 30_000,
          maxStalledCount: options.maxStalledCount ?? 3,
          autorun: options.autorun ?? true,
          // BullMQ's metrics count every completed and finally-failed job inside the same Lua
          // script that takes it out of `active`, so the scaling signal's rates agree exactly with
          // the queue's state. One day of per-minute points (1,440 numbers) per outcome.
          ...(bullmqMetrics && { metrics: { maxDataPoints: 1_440 } }),
          ...(options.telemetry && { telemetry: options.telemetry }),
          ...(options.limiter && {
            limiter: { max: options.limiter.max, duration: options.limiter.durationMs },
          }),
          settings: {
            backoffStrategy: (attemptsMade, type, _error, job) =>
              runner.backoff(queue, attemptsMade, type, job),
          },
        },
      )
      worker.on('error', (error) => this.#logger.error({ err: error, queue }, '[@scale/jobs] worker error'))
      // A job that stalled more than maxStalledCount times gets a deferred failure from BullMQ's
      // stalled checker; the next worker to take it fails it without calling our processor, so
      // it is dead-lettered here. The structural mark is `deferredFailure`, not the message text.
      worker.on('failed', (job, error) => {
        if (job?.deferredFailure) void runner.deadLetter(queue, job, error, true).catch(() => {})
      })
      return worker
    })

    if (options.cancellation ?? true) this.#subscriber = this.#listenForCancels()

    // Opt-in only: a library must not decide when its host process ends.
    const signals = options.shutdown?.signals ?? []
    this.#removeSignalHandlers =
      signals.length === 0
        ? () => {}
        : shutdownOnSignal([{ close: () => this.#shutdown(this.#signal, this.#deadlineMs) }], {
            signals,
            deadlineMs: this.#deadlineMs,
            exitProcess: options.shutdown?.exitProcess ?? true,
            logger: this.#logger,
            onSignal: (signal) => {
              this.#signal = signal
            },
          })
  }

  /** A connection of its own (a subscribed one can do nothing else) on every queue's cancel channel. */
  #listenForCancels(): Redis | Cluster {
    const subscriber = this.#client.duplicate()
    subscriber.on('error', (error: Error) =>
      this.#logger.warn({ err: error }, '[@scale/jobs] cancel subscriber error'),
    )
    subscriber.on('message', (_channel: string, message: string) => {
      try {
        const { id, reason } = JSON.parse(message) as { id: string; reason: string | null }
        this.cancel(String(id), reason ?? undefined)
      } catch {}
    })
    void subscriber
      .subscribe(...this.queues.map((queue) => cancelChannel(this.#keyPrefix, queue)))
      .catch((error: unknown) => this.#logger.warn({ err: error }, '[@scale/jobs] cancel subscribe failed'))
    return subscriber
  }

  inFlight(): number {
    return this.#runner.flights.size
  }

  run(): void {
    if (this.#closing) throw new JobsClosedError('worker', 'run')
    for (const worker of this.bullWorkers) {
      if (!worker.isRunning())
        void worker.run().catch((error) => this.#logger.error({ err: error }, '[@scale/jobs] run failed'))
    }
  }

  cancel(jobId: string, reason?: string): boolean {
    return this.#runner.cancel(jobId, reason)
  }

  close(options: { deadlineMs?: number } = {}): Promise<ShutdownReport> {
    return this.#shutdown(undefined, options.deadlineMs ?? this.#deadlineMs)
  }

  #shutdown(signal: string | undefined, deadlineMs: number): Promise<ShutdownReport> {
    this.#closing ??= shutDownWorker(
      {
        runner: this.#runner,
        bullWorkers: this.bullWorkers,
        emit: this.#emit,
        release: async () => {
          this.#removeSignalHandlers()
          this.#subscriber?.disconnect()
          await this.#stats.close()
          if (this.#ownsClient) this.#client.disconnect()
        },
      },
      signal,
      deadlineMs,
    )
    return this.#closing
  }
}
