import { FlowProducer, type Queue, type Telemetry } from 'bullmq'
import type { Cluster, Redis } from 'ioredis'
import {
  bullConnection,
  cancelChannel,
  commandClient,
  keyPrefixOf,
  openQueue,
  type RedisConnection,
} from './connection.js'
import { withDeadline } from './deadline.js'
import { type AnyJobDefinition, type JobDefinition, versionedJobName } from './define-job.js'
import { EnqueueError, EnqueueTimeoutError, JobsClosedError, JobsError, JobsOptionsError } from './errors.js'
import { bullFlow, type EnqueuedFlow, enqueuedFlow, type FlowNode } from './flows.js'
import { bullJobOptions, type EnqueueOptions } from './job-options.js'
import { silentLogger } from './logger.js'
import { Metrics } from './metrics.js'
import {
  type CancelOutcome,
  type CreateProducerOptions,
  checkRepeat,
  type EnqueuedJob,
  type Producer,
  type ScheduleOptions,
} from './producer-options.js'
import { validateForEnqueue } from './validate-payload.js'

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
  const prefix = keyPrefixOf(options.connection, options)
  const timeoutMs = options.enqueueTimeoutMs ?? 5_000
  if (!(timeoutMs > 0)) {
    throw new JobsOptionsError(
      'enqueueTimeoutMs',
      `enqueueTimeoutMs must be a number above 0 (or Infinity), got ${timeoutMs}`,
    )
  }
  const metrics = new Metrics(options.metrics, options.logger ?? silentLogger)
  return new BullProducer(options.connection, prefix, timeoutMs, options.telemetry, metrics)
}

class BullProducer implements Producer {
  readonly #connection: RedisConnection
  readonly #prefix: string
  readonly #queues = new Map<string, Queue>()
  readonly #timeoutMs: number
  #flowProducer: FlowProducer | undefined
  #commands: { client: Redis | Cluster; owned: boolean } | undefined
  #closed = false
  #closing: Promise<void> | undefined

  readonly #telemetry: Telemetry | undefined
  readonly #metrics: Metrics

  constructor(
    connection: RedisConnection,
    prefix: string,
    timeoutMs: number,
    telemetry: Telemetry | undefined,
    metrics: Metrics,
  ) {
    this.#connection = connection
    this.#prefix = prefix
    this.#timeoutMs = timeoutMs
    this.#telemetry = telemetry
    this.#metrics = metrics
  }

  /**
   * Runs one Redis call of `job` under the deadline; wraps its failure as `EnqueueError`. With a
   * metrics hook, counts `enqueued` jobs added (or the failure); without one, no extra promise.
   */
  #redis<T>(job: AnyJobDefinition, work: () => Promise<T>, enqueued = 0): Promise<T> {
    let result: Promise<T>
    try {
      result = withDeadline(
        work(),
        this.#timeoutMs,
        () => new EnqueueTimeoutError(job.name, job.queue, this.#timeoutMs),
        (error) => new EnqueueError(job.name, job.queue, error),
      )
    } catch (error) {
      result = Promise.reject(new EnqueueError(job.name, job.queue, error))
    }
    if (enqueued === 0 || !this.#metrics.enabled) return result
    const labels = { queue: job.queue, job: job.name }
    return result.then(
      (value) => {
        this.#metrics.increment('jobs_enqueued_total', labels, enqueued)
        return value
      },
      (error: unknown) => {
        this.#metrics.increment('jobs_enqueue_errors_total', { ...labels, code: (error as JobsError).code })
        return Promise.reject(error)
      },
    )
  }

  queue(name: string): Queue {
    return this.#queue(name, 'queue')
  }

  /** The BullMQ queue `name`, opened on first use; throws `JobsClosedError` (naming `method`) once closed. */
  #queue(name: string, method: string): Queue {
    if (this.#closed) throw new JobsClosedError('producer', method)
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
    const queue = this.#queue(job.queue, 'enqueue')
    const added = await this.#redis(
      job,
      () => queue.add(versionedJobName(job.name, job.version), data, opts),
      1,
    )
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
    const queue = this.#queue(job.queue, 'enqueueMany')
    const added = await this.#redis(job, () => queue.addBulk(jobs), jobs.length)
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
    const queue = this.#queue(job.queue, 'schedule')
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
    if (this.#closed) throw new JobsClosedError('producer', 'enqueueFlow')
    if (!this.#flowProducer) {
      this.#flowProducer = new FlowProducer({
        connection: bullConnection(this.#connection, false),
        prefix: this.#prefix,
        ...(this.#telemetry && { telemetry: this.#telemetry }),
      })
      this.#flowProducer.on('error', () => {})
    }
    const producer = this.#flowProducer
    const added = await this.#redis(root.job, () => producer.add(flow), 1)
    return enqueuedFlow(added, root)
  }

  /** The user's instance, or (given options) one client of ours, opened on the first cancel. */
  #publisher(): Redis | Cluster {
    this.#commands ??= commandClient(this.#connection)
    return this.#commands.client
  }

  async cancel(job: AnyJobDefinition, id: string, reason?: string): Promise<CancelOutcome> {
    const queue = this.#queue(job.queue, 'cancel')
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
    const queue = this.#queue(job.queue, 'unschedule')
    return this.#redis(job, () => queue.removeJobScheduler(schedulerId))
  }

  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
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
      () =>
        new JobsError('E_JOBS_CLOSE_TIMEOUT', `closing the queues took over ${this.#timeoutMs} ms`, {
          context: { method: 'close' },
        }),
    ).catch(() => {})
  }
}
