import { type Job, UnrecoverableError, WaitingError } from 'bullmq'
import type { Cluster, Redis } from 'ioredis'
import { retryDelayMs } from './backoff.js'
import { bullConnection, checkPrefix, commandClient, DEFAULT_PREFIX } from './connection.js'
import { type DeadLetterEntry, writeDeadLetter } from './dead-letter-store.js'
import { type AnyJobDefinition, parseJobName } from './define-job.js'
import {
  InvalidOptionsError,
  InvalidPayloadError,
  JobCancelledError,
  JobTimeoutError,
  MissingMigrationError,
  PermanentError,
  ShutdownDeadlineError,
  UnknownJobError,
} from './errors.js'
import { abortFlight, type Flight, HandlerContext, newFlight, type Resolved } from './handler-context.js'
import { BACKOFF_TYPE } from './job-options.js'
import { type Logger, silentLogger } from './logger.js'
import { cancelChannel } from './producer.js'
import { shutdownOnSignal } from './shutdown-on-signal.js'
import { TolerantWorker } from './tolerant-worker.js'
import { migratePayload, validatePayload } from './validate-payload.js'
import type { CreateWorkerOptions, JobWorker, ShutdownReport, WorkerEvent } from './worker-options.js'
import { WorkerStats } from './worker-stats.js'

const RETURNED = Symbol('returned')

/** Any string `code` (ours, Node's `ETIMEDOUT`, a driver's), so dead letters can be filtered by it. */
function errorCode(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined
  return typeof code === 'string' ? code : undefined
}

function isPermanent(error: unknown): boolean {
  return (
    error instanceof PermanentError ||
    error instanceof InvalidPayloadError ||
    error instanceof UnknownJobError ||
    error instanceof MissingMigrationError ||
    error instanceof JobCancelledError ||
    error instanceof UnrecoverableError ||
    (error instanceof Error && error.name === 'UnrecoverableError')
  )
}

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

class TypedWorker implements JobWorker {
  readonly queues: readonly string[]
  readonly bullWorkers: readonly TolerantWorker[]
  readonly #prefix: string
  readonly #definitions = new Map<string, AnyJobDefinition>()
  readonly #flights = new Set<Flight>()
  readonly #client: Redis | Cluster
  readonly #ownsClient: boolean
  readonly #stats: WorkerStats
  readonly #deadLetter: boolean
  readonly #logger: Logger
  readonly #onEvent: (event: WorkerEvent) => void
  readonly #hasOnEvent: boolean
  readonly #deadlineMs: number
  /** Removes the handlers installed for `shutdown.signals`, if any were asked for. */
  readonly #removeSignalHandlers: () => void
  #signal: NodeJS.Signals | undefined
  /** Subscribed to the queues' cancel channels (see `producer.cancel`). */
  readonly #subscriber: Redis | Cluster | undefined
  /** BullMQ job name (`<queue>` + `name@vN`) → its definition and version, resolved once. */
  readonly #resolved = new Map<string, Resolved>()
  #closing: Promise<ShutdownReport> | undefined
  #finishedDuringShutdown = 0
  #shuttingDown = false

  constructor(options: CreateWorkerOptions) {
    this.#prefix = options.prefix ?? DEFAULT_PREFIX
    checkPrefix(options.connection, this.#prefix)
    if (options.jobs.length === 0)
      throw new InvalidOptionsError('createWorker needs at least one job definition')
    for (const job of options.jobs) {
      const key = `${job.queue}\u0000${job.name}`
      if (this.#definitions.has(key)) {
        throw new InvalidOptionsError(`job "${job.name}" is defined twice for queue "${job.queue}"`)
      }
      this.#definitions.set(key, job)
    }
    const limiter = options.limiter
    if (limiter && !(Number.isInteger(limiter.max) && limiter.max > 0 && limiter.durationMs > 0)) {
      throw new InvalidOptionsError('limiter needs an integer max > 0 and a durationMs > 0')
    }
    this.#deadLetter = options.deadLetter ?? true
    this.#logger = options.logger ?? silentLogger
    const onEvent = options.onEvent
    this.#hasOnEvent = onEvent !== undefined
    this.#onEvent = onEvent
      ? (event) => {
          try {
            onEvent(event)
          } catch {}
        }
      : () => {}
    this.#deadlineMs = options.shutdown?.deadlineMs ?? 25_000
    const { client, owned } = commandClient(options.connection)
    this.#client = client
    this.#ownsClient = owned
    this.#stats = new WorkerStats(client, this.#prefix, options.statsIntervalMs ?? 1_000)

    this.queues = [...new Set(options.jobs.map((job) => job.queue))]
    this.bullWorkers = this.queues.map((queue) => {
      const worker: TolerantWorker = new TolerantWorker(
        queue,
        (job, token) => this.#process(worker, queue, job, token),
        {
          connection: bullConnection(options.connection, true),
          prefix: this.#prefix,
          concurrency: options.concurrency ?? 1,
          lockDuration: options.lockDurationMs ?? 30_000,
          stalledInterval: options.stalledIntervalMs ?? 30_000,
          maxStalledCount: options.maxStalledCount ?? 3,
          autorun: options.autorun ?? true,
          // BullMQ's metrics count every completed and finally-failed job inside the same Lua
          // script that takes it out of `active`, so the scaling signal's rates agree exactly with
          // the queue's state. One day of per-minute points (1,440 numbers) per outcome.
          ...(options.metrics && { metrics: { maxDataPoints: 1_440 } }),
          ...(options.telemetry && { telemetry: options.telemetry }),
          ...(options.limiter && {
            limiter: { max: options.limiter.max, duration: options.limiter.durationMs },
          }),
          settings: {
            backoffStrategy: (attemptsMade, type, _error, job) =>
              this.#backoff(queue, attemptsMade, type, job),
          },
        },
      )
      worker.on('error', (error) => this.#logger.error({ err: error, queue }, '[@scale/jobs] worker error'))
      // A job that stalled more than maxStalledCount times gets a deferred failure from BullMQ's
      // stalled checker; the next worker to take it fails it without calling our processor, so
      // it is dead-lettered here. The structural mark is `deferredFailure`, not the message text.
      worker.on('failed', (job, error) => {
        if (job?.deferredFailure) void this.#toDeadLetter(queue, job, error, true).catch(() => {})
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
      .subscribe(...this.queues.map((queue) => cancelChannel(this.#prefix, queue)))
      .catch((error: unknown) => this.#logger.warn({ err: error }, '[@scale/jobs] cancel subscribe failed'))
    return subscriber
  }

  inFlight(): number {
    return this.#flights.size
  }

  run(): void {
    for (const worker of this.bullWorkers) {
      if (!worker.isRunning())
        void worker.run().catch((error) => this.#logger.error({ err: error }, '[@scale/jobs] run failed'))
    }
  }

  #backoff(
    queue: string,
    attemptsMade: number,
    type: string | undefined,
    job: { id?: string | undefined; name: string } | undefined,
  ): number {
    if (type !== BACKOFF_TYPE || !job) return 0
    const definition = this.#definitions.get(`${queue}\u0000${parseJobName(job.name).name}`)
    if (!definition) return 0
    const delayMs = retryDelayMs(definition.retry, attemptsMade)
    this.#onEvent({
      type: 'retry-scheduled',
      queue,
      jobId: String(job.id),
      name: definition.name,
      attempt: attemptsMade,
      delayMs,
    })
    return delayMs
  }

  async #process(
    worker: TolerantWorker,
    queue: string,
    job: Job,
    token: string | undefined,
  ): Promise<unknown> {
    const started = performance.now()
    const flight = newFlight(job)
    let timeout: NodeJS.Timeout | undefined
    this.#flights.add(flight)
    const resolved = this.#resolve(queue, job.name)
    const { name, version, definition } = resolved
    try {
      if (!definition) throw new UnknownJobError(name, queue)
      const unparsable = worker.unparsableData(job)
      if (unparsable !== undefined) {
        throw new InvalidPayloadError(name, 'run', [{ path: '', message: 'stored data is not valid JSON' }])
      }
      const migrated =
        version === definition.version ? job.data : migratePayload(definition, version, job.data)
      let payload = definition.validate ? validatePayload(definition, migrated, 'run') : migrated
      if (payload instanceof Promise) payload = await payload
      const context = new HandlerContext(flight, queue, resolved)
      let outcome: unknown = RETURNED
      // Handed back while an async validator ran: do not start the handler at all.
      if (flight.abortReason instanceof JobCancelledError) throw flight.abortReason
      if (!flight.handedBack) {
        flight.stage = 'running'
        if (definition.timeoutMs !== undefined) timeout = this.#startTimeout(flight, definition.timeoutMs)
        outcome = definition.handler(payload, context)
        if (outcome instanceof Promise) {
          // One promise that settles with the handler, with RETURNED when the shutdown deadline
          // hands the job back, or with the timeout's or a cancel's error (cheaper per job than a
          // race against a shared promise, which would also keep one reaction per job alive).
          const running = outcome
          outcome = await new Promise((resolve, reject) => {
            flight.handBack = () => resolve(RETURNED)
            flight.interrupt = reject
            running.then(resolve, reject)
          })
        }
      }
      flight.stage = 'finishing'
      if (outcome === RETURNED) {
        try {
          await job.moveToWait(token)
          if (this.#hasOnEvent) this.#onEvent({ type: 'returned', queue, jobId: String(job.id), name })
        } catch (moveError) {
          // The lock is gone or Redis is unreachable: the job stays active until a stalled check
          // (of any worker) puts it back, which is the same outcome, only later.
          this.#logger.warn(
            { err: moveError, queue, jobId: job.id },
            '[@scale/jobs] could not return job; stalled check will',
          )
        }
        // Tells BullMQ the job was moved by us: not completed, not failed.
        throw new WaitingError()
      }
      if (this.#hasOnEvent) {
        this.#onEvent({
          type: 'completed',
          queue,
          jobId: String(job.id),
          name,
          attempt: job.attemptsMade + 1,
        })
      }
      this.#finished(queue, started)
      return outcome
    } catch (error) {
      if (error instanceof WaitingError) throw error
      flight.stage = 'finishing'
      const permanent = isPermanent(error)
      const final = permanent || job.attemptsMade + 1 >= (job.opts.attempts ?? 1)
      if (error instanceof JobCancelledError) {
        // Asked for: failed without retries, not a dead letter to look into.
        this.#finished(queue, started)
        this.#onEvent({ type: 'cancelled', queue, jobId: String(job.id), name })
      } else if (final) {
        this.#finished(queue, started)
        await this.#toDeadLetter(queue, job, error, permanent, worker.unparsableData(job))
      }
      if (permanent && !(error instanceof UnrecoverableError)) {
        // BullMQ skips the remaining attempts only for its own UnrecoverableError.
        const unrecoverable = new UnrecoverableError(error instanceof Error ? error.message : String(error))
        unrecoverable.cause = error
        throw unrecoverable
      }
      throw error
    } finally {
      if (timeout) clearTimeout(timeout)
      this.#flights.delete(flight)
    }
  }

  /** Fails the attempt with `JobTimeoutError` (and aborts the handler's signal) after `timeoutMs`. */
  #startTimeout(flight: Flight, timeoutMs: number): NodeJS.Timeout {
    return setTimeout(() => {
      if (flight.stage !== 'running') return
      const error = new JobTimeoutError(String(flight.job.id), timeoutMs)
      abortFlight(flight, error)
      flight.interrupt?.(error)
    }, timeoutMs)
  }

  /**
   * Cancels a job this worker runs now (from `producer.cancel`): its signal is aborted with
   * `JobCancelledError` and the attempt fails without retries. Returns whether it was running here.
   */
  cancel(jobId: string, reason?: string): boolean {
    for (const flight of this.#flights) {
      if (String(flight.job.id) !== jobId || flight.stage === 'finishing') continue
      const error = new JobCancelledError(jobId, reason)
      abortFlight(flight, error)
      flight.interrupt?.(error)
      return true
    }
    return false
  }

  #resolve(queue: string, jobName: string): Resolved {
    const key = `${queue}\u0000${jobName}`
    let resolved = this.#resolved.get(key)
    if (!resolved) {
      const { name, version } = parseJobName(jobName)
      resolved = { name, version, definition: this.#definitions.get(`${queue}\u0000${name}`) }
      // Bounded: names come from producers, but a queue holds few distinct job names and versions.
      if (this.#resolved.size < 10_000) this.#resolved.set(key, resolved)
    }
    return resolved
  }

  #finished(queue: string, started: number): void {
    this.#stats.record(queue, performance.now() - started)
    if (this.#shuttingDown) this.#finishedDuringShutdown += 1
  }

  /** `rawData` is the stored text of a job whose data is not JSON: kept as its payload. */
  async #toDeadLetter(
    queue: string,
    job: Job,
    error: unknown,
    permanent: boolean,
    rawData?: string,
  ): Promise<void> {
    const reason = error instanceof Error ? error.message : String(error)
    const { name, version } = parseJobName(job.name)
    this.#onEvent({ type: 'dead-lettered', queue, jobId: String(job.id), name, reason, permanent })
    if (!this.#deadLetter) return
    const entry: DeadLetterEntry = {
      id: String(job.id),
      queue,
      name,
      version,
      payload: rawData ?? job.data,
      reason,
      errorName: error instanceof Error ? error.name : typeof error,
      errorCode: errorCode(error),
      stack: error instanceof Error ? error.stack : undefined,
      permanent,
      attemptsMade: job.attemptsMade + 1,
      attempts: job.opts.attempts ?? 1,
      priority: job.opts.priority,
      removeOnComplete: job.opts.removeOnComplete,
      removeOnFail: job.opts.removeOnFail,
      enqueuedAt: job.timestamp,
      failedAt: Date.now(),
    }
    try {
      await writeDeadLetter(this.#client, this.#prefix, entry)
    } catch (writeError) {
      // The job still lands in BullMQ's failed set, so it is not lost; the log says where it is.
      this.#logger.error(
        { err: writeError, queue, jobId: entry.id },
        '[@scale/jobs] could not write dead letter; job is in the failed set',
      )
    }
  }

  close(options: { deadlineMs?: number } = {}): Promise<ShutdownReport> {
    return this.#shutdown(undefined, options.deadlineMs ?? this.#deadlineMs)
  }

  #shutdown(signal: string | undefined, deadlineMs: number): Promise<ShutdownReport> {
    if (this.#closing) return this.#closing
    this.#closing = (async () => {
      const started = Date.now()
      this.#shuttingDown = true
      const returned: string[] = []
      // Worker.close() stops fetching at once and waits for the jobs in flight; the timer hands
      // back whatever is still running shortly before the deadline (a fifth of it, at most 1 s,
      // is kept for moving the jobs back and closing) so the process is gone by the deadline.
      const handBackAt = deadlineMs - Math.min(1_000, deadlineMs / 5)
      const deadline = setTimeout(() => {
        for (const flight of this.#flights) {
          // A job already settling (completing, failing) is left to finish: it is moments away.
          if (flight.stage === 'finishing') continue
          returned.push(String(flight.job.id))
          flight.handedBack = new ShutdownDeadlineError(String(flight.job.id), deadlineMs)
          abortFlight(flight, flight.handedBack)
          flight.handBack?.()
        }
      }, handBackAt)
      try {
        await Promise.all(this.bullWorkers.map((worker) => worker.close()))
      } finally {
        clearTimeout(deadline)
        this.#removeSignalHandlers()
        this.#subscriber?.disconnect()
        await this.#stats.close()
        if (this.#ownsClient) this.#client.disconnect()
      }
      const report = { finished: this.#finishedDuringShutdown, returned, elapsedMs: Date.now() - started }
      this.#onEvent({
        type: 'shutdown',
        signal,
        finished: report.finished,
        returned: returned.length,
        elapsedMs: report.elapsedMs,
      })
      return report
    })()
    return this.#closing
  }
}
