import type { Queue } from 'bullmq'
import { checkPrefix, DEFAULT_PREFIX, openQueue, type RedisConnection } from './connection.js'
import { type AnyJobDefinition, type JobDefinition, versionedJobName } from './define-job.js'
import { EnqueueError, InvalidOptionsError } from './errors.js'
import { bullJobOptions, type EnqueueOptions } from './job-options.js'
import { validatePayload } from './validate-payload.js'

/** What `enqueue` returns. */
export interface EnqueuedJob {
  /** BullMQ job ID. For an idempotency key it is the same on every enqueue of that key. */
  readonly id: string
  readonly name: string
  readonly queue: string
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
  return new BullProducer(options.connection, prefix)
}

class BullProducer implements Producer {
  readonly #connection: RedisConnection
  readonly #prefix: string
  readonly #queues = new Map<string, Queue>()
  #closed = false

  constructor(connection: RedisConnection, prefix: string) {
    this.#connection = connection
    this.#prefix = prefix
  }

  queue(name: string): Queue {
    if (this.#closed) throw new InvalidOptionsError('this producer is closed; create a new one')
    let queue = this.#queues.get(name)
    if (!queue) {
      queue = openQueue(name, this.#connection, this.#prefix)
      this.#queues.set(name, queue)
    }
    return queue
  }

  async enqueue<Input, Output, Result>(
    job: JobDefinition<Input, Output, Result>,
    payload: Input,
    options?: EnqueueOptions,
  ): Promise<EnqueuedJob> {
    const checked = validatePayload(job, payload, 'enqueue')
    if (checked instanceof Promise) await checked
    const opts = bullJobOptions(job, options)
    try {
      const added = await this.queue(job.queue).add(versionedJobName(job.name, job.version), payload, opts)
      return { id: String(added.id), name: job.name, queue: job.queue }
    } catch (error) {
      throw new EnqueueError(job.name, job.queue, error)
    }
  }

  async enqueueMany<Input, Output, Result>(
    job: JobDefinition<Input, Output, Result>,
    items: ReadonlyArray<{ payload: Input; options?: EnqueueOptions }>,
  ): Promise<EnqueuedJob[]> {
    for (const item of items) {
      const checked = validatePayload(job, item.payload, 'enqueue')
      if (checked instanceof Promise) await checked
    }
    const name = versionedJobName(job.name, job.version)
    const shared = bullJobOptions(job)
    const jobs = items.map((item) => ({
      name,
      data: item.payload,
      // Items without options share one options object, as a hand-written addBulk would.
      opts: item.options === undefined ? shared : bullJobOptions(job, item.options),
    }))
    try {
      const added = await this.queue(job.queue).addBulk(jobs)
      return added.map((a) => ({ id: String(a.id), name: job.name, queue: job.queue }))
    } catch (error) {
      throw new EnqueueError(job.name, job.queue, error)
    }
  }

  async schedule<Input, Output, Result>(
    job: JobDefinition<Input, Output, Result>,
    schedulerId: string,
    repeat: ScheduleOptions,
    payload: Input,
  ): Promise<void> {
    if ((repeat.everyMs === undefined) === (repeat.pattern === undefined)) {
      throw new InvalidOptionsError(`schedule "${schedulerId}": give exactly one of everyMs or pattern`)
    }
    const checked = validatePayload(job, payload, 'enqueue')
    if (checked instanceof Promise) await checked
    const { attempts, backoff, removeOnComplete, removeOnFail } = bullJobOptions(job)
    const rule: { every?: number; pattern?: string; tz?: string; limit?: number } = {}
    if (repeat.everyMs !== undefined) rule.every = repeat.everyMs
    if (repeat.pattern !== undefined) rule.pattern = repeat.pattern
    if (repeat.tz !== undefined) rule.tz = repeat.tz
    if (repeat.limit !== undefined) rule.limit = repeat.limit
    try {
      await this.queue(job.queue).upsertJobScheduler(schedulerId, rule, {
        name: versionedJobName(job.name, job.version),
        data: payload,
        opts: {
          ...(attempts !== undefined && { attempts }),
          ...(backoff !== undefined && { backoff }),
          ...(removeOnComplete !== undefined && { removeOnComplete }),
          ...(removeOnFail !== undefined && { removeOnFail }),
        },
      })
    } catch (error) {
      throw new EnqueueError(job.name, job.queue, error)
    }
  }

  async unschedule(job: AnyJobDefinition, schedulerId: string): Promise<boolean> {
    return this.queue(job.queue).removeJobScheduler(schedulerId)
  }

  async close(): Promise<void> {
    this.#closed = true
    const queues = [...this.#queues.values()]
    this.#queues.clear()
    await Promise.all(queues.map((q) => q.close()))
  }
}
