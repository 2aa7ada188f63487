import { FlowProducer, getNextMillis, type Queue, type Telemetry } from 'bullmq'
import type { Cluster, Redis } from 'ioredis'
import {
  bullConnection,
  checkPrefix,
  commandClient,
  DEFAULT_PREFIX,
  openQueue,
  queueKey,
  type RedisConnection,
} from './connection.js'
import { withDeadline } from './deadline.js'
import { type AnyJobDefinition, type JobDefinition, versionedJobName } from './define-job.js'
import { EnqueueError, EnqueueTimeoutError, InvalidOptionsError } from './errors.js'
import { bullFlow, type EnqueuedFlow, enqueuedFlow, type FlowNode } from './flows.js'
import { bullJobOptions, type EnqueueOptions } from './job-options.js'
import { validateForEnqueue } from './validate-payload.js'

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

/** @internal The pub/sub channel on which workers of a queue hear cancels. */
export function cancelChannel(prefix: string, queue: string): string {
  return queueKey(prefix, queue, 'scale-cancel')
}

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

export interface CreateProducerOptions {
  /** The user's ioredis instance (Redis or Cluster) or options for one. */
  connection: RedisConnection
  /**
   * Key prefix of every queue. Keep a `{hash tag}` for Redis Cluster.
   * @default '{jobs}'
   */
  prefix?: string
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
  /** Closes the BullMQ queues (the user's Redis instance stays open). */
  close(): Promise<void>
}

/**
 * Creates a producer of typed jobs.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { createProducer } from '@scale/jobs'
 *
 * const producer = createProducer({ connection: new Redis(process.env.REDIS_URL!) })
 * await producer.enqueue(resizeImage, { photoId: 'p1', width: 640 }, { idempotencyKey: 'p1-640' })
 * ```
 */
export function createProducer(options: CreateProducerOptions): Producer {
  const prefix = options.prefix ?? DEFAULT_PREFIX
  checkPrefix(options.connection, prefix)
  const timeoutMs = options.enqueueTimeoutMs ?? 5_000
  if (!(timeoutMs > 0)) {
    throw new InvalidOptionsError(`enqueueTimeoutMs must be a number above 0 (or Infinity), got ${timeoutMs}`)
  }
  return new BullProducer(options.connection, prefix, timeoutMs, options.telemetry)
}

/** @internal Refuses a repeat rule BullMQ would fail on, before anything is written. */
function checkRepeat(schedulerId: string, repeat: ScheduleOptions): void {
  if ((repeat.everyMs === undefined) === (repeat.pattern === undefined)) {
    throw new InvalidOptionsError(`schedule "${schedulerId}": give exactly one of everyMs or pattern`)
  }
  if (repeat.everyMs !== undefined && !(Number.isInteger(repeat.everyMs) && repeat.everyMs > 0)) {
    throw new InvalidOptionsError(
      `schedule "${schedulerId}": everyMs must be a positive integer, got ${repeat.everyMs}`,
    )
  }
  if (repeat.limit !== undefined && !(Number.isInteger(repeat.limit) && repeat.limit > 0)) {
    throw new InvalidOptionsError(
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
      throw new InvalidOptionsError(
        `schedule "${schedulerId}": invalid cron pattern "${repeat.pattern}"${repeat.tz ? ` (tz ${repeat.tz})` : ''}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      )
    }
  }
}

class BullProducer implements Producer {
  readonly #connection: RedisConnection
  readonly #prefix: string
  readonly #queues = new Map<string, Queue>()
  readonly #timeoutMs: number
  #flowProducer: FlowProducer | undefined
  #commands: { client: Redis | Cluster; owned: boolean } | undefined
  #closed = false

  readonly #telemetry: Telemetry | undefined

  constructor(
    connection: RedisConnection,
    prefix: string,
    timeoutMs: number,
    telemetry: Telemetry | undefined,
  ) {
    this.#connection = connection
    this.#prefix = prefix
    this.#timeoutMs = timeoutMs
    this.#telemetry = telemetry
  }

  /** Runs one Redis call of `job` under the deadline; wraps its failure as `EnqueueError`. */
  #redis<T>(job: AnyJobDefinition, work: () => Promise<T>): Promise<T> {
    let pending: Promise<T>
    try {
      pending = work()
    } catch (error) {
      return Promise.reject(new EnqueueError(job.name, job.queue, error))
    }
    return withDeadline(
      pending,
      this.#timeoutMs,
      () => new EnqueueTimeoutError(job.name, job.queue, this.#timeoutMs),
      (error) => new EnqueueError(job.name, job.queue, error),
    )
  }

  queue(name: string): Queue {
    if (this.#closed) throw new InvalidOptionsError('this producer is closed; create a new one')
    let queue = this.#queues.get(name)
    if (!queue) {
      queue = openQueue(name, this.#connection, this.#prefix, this.#telemetry)
      this.#queues.set(name, queue)
    }
    return queue
  }

  async enqueue<Input, Output, Result>(
    job: JobDefinition<Input, Output, Result>,
    payload: Input,
    options?: EnqueueOptions,
  ): Promise<EnqueuedJob> {
    let data = validateForEnqueue(job, payload)
    if (data instanceof Promise) data = await data
    const opts = bullJobOptions(job, options)
    const queue = this.queue(job.queue)
    const added = await this.#redis(job, () => queue.add(versionedJobName(job.name, job.version), data, opts))
    return { id: String(added.id), name: job.name, queue: job.queue }
  }

  async enqueueMany<Input, Output, Result>(
    job: JobDefinition<Input, Output, Result>,
    items: ReadonlyArray<{ payload: Input; options?: EnqueueOptions }>,
  ): Promise<EnqueuedJob[]> {
    const payloads: unknown[] = []
    for (const item of items) {
      let data = validateForEnqueue(job, item.payload)
      if (data instanceof Promise) data = await data
      payloads.push(data)
    }
    const name = versionedJobName(job.name, job.version)
    const shared = bullJobOptions(job)
    const jobs = items.map((item, i) => ({
      name,
      data: payloads[i],
      // Items without options share one options object, as a hand-written addBulk would.
      opts: item.options === undefined ? shared : bullJobOptions(job, item.options),
    }))
    const queue = this.queue(job.queue)
    const added = await this.#redis(job, () => queue.addBulk(jobs))
    return added.map((a) => ({ id: String(a.id), name: job.name, queue: job.queue }))
  }

  async schedule<Input, Output, Result>(
    job: JobDefinition<Input, Output, Result>,
    schedulerId: string,
    repeat: ScheduleOptions,
    payload: Input,
  ): Promise<void> {
    checkRepeat(schedulerId, repeat)
    let data = validateForEnqueue(job, payload)
    if (data instanceof Promise) data = await data
    const { attempts, backoff, removeOnComplete, removeOnFail } = bullJobOptions(job)
    const rule: { every?: number; pattern?: string; tz?: string; limit?: number } = {}
    if (repeat.everyMs !== undefined) rule.every = repeat.everyMs
    if (repeat.pattern !== undefined) rule.pattern = repeat.pattern
    if (repeat.tz !== undefined) rule.tz = repeat.tz
    if (repeat.limit !== undefined) rule.limit = repeat.limit
    const queue = this.queue(job.queue)
    await this.#redis(job, () =>
      queue.upsertJobScheduler(schedulerId, rule, {
        name: versionedJobName(job.name, job.version),
        data,
        opts: {
          ...(attempts !== undefined && { attempts }),
          ...(backoff !== undefined && { backoff }),
          ...(removeOnComplete !== undefined && { removeOnComplete }),
          ...(removeOnFail !== undefined && { removeOnFail }),
        },
      }),
    )
  }

  async enqueueFlow(root: FlowNode): Promise<EnqueuedFlow> {
    const flow = await bullFlow(root, this.#prefix)
    if (this.#closed) throw new InvalidOptionsError('this producer is closed; create a new one')
    if (!this.#flowProducer) {
      this.#flowProducer = new FlowProducer({
        connection: bullConnection(this.#connection, false),
        prefix: this.#prefix,
        ...(this.#telemetry && { telemetry: this.#telemetry }),
      })
      this.#flowProducer.on('error', () => {})
    }
    const producer = this.#flowProducer
    const added = await this.#redis(root.job, () => producer.add(flow))
    return enqueuedFlow(added, root)
  }

  /** The user's instance, or (given options) one client of ours, opened on the first cancel. */
  #publisher(): Redis | Cluster {
    this.#commands ??= commandClient(this.#connection)
    return this.#commands.client
  }

  async cancel(job: AnyJobDefinition, id: string, reason?: string): Promise<CancelOutcome> {
    const queue = this.queue(job.queue)
    return this.#redis(job, async () => {
      const found = await queue.getJob(id)
      if (!found) return 'not-found'
      const state = await found.getState()
      if (state === 'completed' || state === 'failed') return 'finished'
      if (state !== 'active') {
        try {
          await found.remove()
          return 'removed'
        } catch {
          // Taken by a worker (locked) between the read and the remove: signal it instead.
        }
      }
      const receivers = await this.#publisher().publish(
        cancelChannel(this.#prefix, job.queue),
        JSON.stringify({ id, reason: reason ?? null }),
      )
      return receivers > 0 ? 'signalled' : 'not-listening'
    })
  }

  async unschedule(job: AnyJobDefinition, schedulerId: string): Promise<boolean> {
    const queue = this.queue(job.queue)
    return this.#redis(job, () => queue.removeJobScheduler(schedulerId))
  }

  async close(): Promise<void> {
    this.#closed = true
    const queues: Array<{ close(): Promise<void> }> = [...this.#queues.values()]
    if (this.#flowProducer) queues.push(this.#flowProducer)
    this.#flowProducer = undefined
    this.#queues.clear()
    if (this.#commands?.owned) this.#commands.client.disconnect()
    // Bounded like an enqueue: closing waits on Redis, which may be the thing that is down.
    await withDeadline(
      Promise.all(queues.map((q) => q.close())),
      this.#timeoutMs,
      () => new Error('close timed out'),
    ).catch(() => {})
  }
}
