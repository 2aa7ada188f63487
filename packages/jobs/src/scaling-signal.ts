import type { Cluster, Redis } from 'ioredis'
import {
  commandClient,
  type KeyPrefixOptions,
  keyPrefixOf,
  queueKey,
  type RedisConnection,
} from './connection.js'
import { JobsClosedError } from './errors.js'
import { suggestWorkers } from './suggest-workers.js'
import { statsKey } from './worker-stats.js'

/** One reading of a queue's load and the worker count it calls for. */
export interface ScalingSignal {
  readonly queue: string
  /** When it was read (ms since epoch). */
  readonly at: number
  /** Jobs waiting to run (plain and prioritized). */
  readonly waiting: number
  readonly active: number
  /** Delayed jobs (retries, `delayMs`), due or not. */
  readonly delayed: number
  /** Delayed jobs whose time has come: ready work, counted in the backlog. */
  readonly delayedDue: number
  /** `waiting + delayedDue`. */
  readonly backlog: number
  /** Age of the oldest ready job, in seconds (0 when none waits). */
  readonly oldestJobAgeSeconds: number
  /** Jobs arriving per second since the previous reading (0 on the first). */
  readonly arrivalRate: number
  /** Jobs finishing (completed, or failed for good) per second since the previous reading. */
  readonly completionRate: number
  /** Mean handler time in seconds, from the workers' counters (`defaultJobSeconds` before any). */
  readonly jobSeconds: number
  readonly suggestedWorkers: number
}

export interface CreateScalingSignalOptions extends KeyPrefixOptions {
  connection: RedisConnection
  queue: string
  /**
   * Concurrency of one worker process (the `concurrency` given to `createWorker`).
   * @default 1
   */
  concurrencyPerWorker?: number
  /**
   * Drain the backlog within this many seconds; shorter asks for more workers.
   * @default 30
   */
  targetDrainSeconds?: number
  /** @default 0 */
  minWorkers?: number
  /** @default 100 */
  maxWorkers?: number
  /**
   * Assumed handler time until workers have reported some.
   * @default 1
   */
  defaultJobSeconds?: number
}

/** Reads a queue's scaling signal; rates are measured between successive reads. */
export interface ScalingSignalReader {
  readonly queue: string
  read(): Promise<ScalingSignal>
  /** Closes the Redis client it created, if any (idempotent); `read()` then throws `JobsClosedError`. */
  close(): Promise<void>
}

/**
 * Creates a reader of the autoscaling signal of one queue: depth, oldest job age, arrival and
 * completion rates, and a suggested worker count. Poll it (every 5–15 s) from an autoscaler, or
 * export it with `registerScalingMetrics`.
 *
 * @example
 * ```ts
 * const signal = createScalingSignal({ connection: redis, queue: 'resize-image', concurrencyPerWorker: 20 })
 * const { suggestedWorkers, backlog } = await signal.read()
 * ```
 */
export function createScalingSignal(options: CreateScalingSignalOptions): ScalingSignalReader {
  return new RedisScalingSignal(options)
}

interface Sample {
  at: number
  finished: number
  reported: number
  busyMs: number
  inSystem: number
}

class RedisScalingSignal implements ScalingSignalReader {
  readonly queue: string
  readonly #prefix: string
  readonly #client: Redis | Cluster
  readonly #ownsClient: boolean
  readonly #concurrency: number
  readonly #targetDrainSeconds: number
  readonly #minWorkers: number
  readonly #maxWorkers: number
  #jobSeconds: number
  #previous: Sample | undefined
  #closed = false

  constructor(options: CreateScalingSignalOptions) {
    this.queue = options.queue
    this.#prefix = keyPrefixOf(options.connection, options)
    const { client, owned } = commandClient(options.connection)
    this.#client = client
    this.#ownsClient = owned
    this.#concurrency = options.concurrencyPerWorker ?? 1
    this.#targetDrainSeconds = options.targetDrainSeconds ?? 30
    this.#minWorkers = options.minWorkers ?? 0
    this.#maxWorkers = options.maxWorkers ?? 100
    this.#jobSeconds = options.defaultJobSeconds ?? 1
  }

  #key(suffix: string): string {
    return queueKey(this.#prefix, this.queue, suffix)
  }

  async read(): Promise<ScalingSignal> {
    if (this.#closed) throw new JobsClosedError('scalingSignal', 'read')
    const now = Date.now()
    // BullMQ scores a delayed job as (due ms) * 4096 + a sequence number, so every score at or
    // below this bound is due.
    const dueBound = now * 0x1000 + 0xfff
    // One MULTI: all keys share the queue's hash tag, and the counts come from one instant.
    const replies = await this.#client
      .multi()
      .llen(this.#key('wait'))
      .zcard(this.#key('prioritized'))
      .llen(this.#key('active'))
      .zcard(this.#key('delayed'))
      .zcount(this.#key('delayed'), 0, dueBound)
      .lindex(this.#key('wait'), -1)
      .zrange(this.#key('delayed'), 0, 0, 'WITHSCORES')
      .hmget(statsKey(this.#prefix, this.queue), 'finished', 'busy_ms')
      .hget(this.#key('metrics:completed'), 'count')
      .hget(this.#key('metrics:failed'), 'count')
      .exec()
    const value = (i: number): unknown => replies?.[i]?.[1]
    const wait = Number(value(0) ?? 0)
    const prioritized = Number(value(1) ?? 0)
    const active = Number(value(2) ?? 0)
    const delayed = Number(value(3) ?? 0)
    const delayedDue = Number(value(4) ?? 0)
    const oldestWaitingId = value(5) as string | null
    const firstDelayed = (value(6) as string[] | null) ?? []
    // Finished jobs: the workers' own counters, flushed every `statsIntervalMs`, or BullMQ's
    // metrics where workers run with `metrics: true` (counted in the same script that empties
    // `active`, so exact at every read). The larger is the better count. A lagging count shows
    // for one read as arrivals that did not happen, and is made up by the next.
    const [reportedRaw, busyRaw] = (value(7) as Array<string | null> | null) ?? [null, null]
    const reported = Number(reportedRaw ?? 0)
    const busyMs = Number(busyRaw ?? 0)
    const finished = Math.max(reported, Number(value(8) ?? 0) + Number(value(9) ?? 0))

    // Oldest ready job: the tail of the wait list (BullMQ pushes at the head, takes from the tail),
    // or a delayed job overdue for longer.
    let oldestAgeMs = 0
    if (oldestWaitingId) {
      const timestamp = Number(await this.#client.hget(this.#key(oldestWaitingId), 'timestamp'))
      if (Number.isFinite(timestamp) && timestamp > 0) oldestAgeMs = Math.max(0, now - timestamp)
    }
    if (firstDelayed.length === 2) {
      const dueAt = Math.floor(Number(firstDelayed[1]) / 0x1000)
      if (dueAt <= now) oldestAgeMs = Math.max(oldestAgeMs, now - dueAt)
    }

    const waiting = wait + prioritized
    const inSystem = waiting + active + delayed
    let arrivalRate = 0
    let completionRate = 0
    const previous = this.#previous
    if (previous && now > previous.at) {
      const seconds = (now - previous.at) / 1000
      const finishedDelta = Math.max(0, finished - previous.finished)
      completionRate = finishedDelta / seconds
      // Everything that arrived either is still in the system or has finished.
      arrivalRate = Math.max(0, inSystem - previous.inSystem + finishedDelta) / seconds
      const reportedDelta = reported - previous.reported
      if (reportedDelta > 0) this.#jobSeconds = Math.max(0, busyMs - previous.busyMs) / reportedDelta / 1000
    } else if (reported > 0) {
      this.#jobSeconds = busyMs / reported / 1000
    }
    this.#previous = { at: now, finished, reported, busyMs, inSystem }

    const backlog = waiting + delayedDue
    return {
      queue: this.queue,
      at: now,
      waiting,
      active,
      delayed,
      delayedDue,
      backlog,
      oldestJobAgeSeconds: oldestAgeMs / 1000,
      arrivalRate,
      completionRate,
      jobSeconds: this.#jobSeconds,
      suggestedWorkers: suggestWorkers({
        backlog,
        active,
        arrivalRate,
        jobSeconds: this.#jobSeconds,
        concurrencyPerWorker: this.#concurrency,
        targetDrainSeconds: this.#targetDrainSeconds,
        minWorkers: this.#minWorkers,
        maxWorkers: this.#maxWorkers,
      }),
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#ownsClient) this.#client.disconnect()
  }
}
