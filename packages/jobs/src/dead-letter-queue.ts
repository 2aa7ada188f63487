import type { Queue } from 'bullmq'
import type { Cluster, Redis } from 'ioredis'
import { commandClient, keyPrefixOf, openQueue, queueKey, type RedisConnection } from './connection.js'
import { matchesFilter, toMillis } from './dead-letter-filter.js'
import type {
  CreateDeadLetterQueueOptions,
  DeadLetterFilter,
  DeadLetterQueue,
  ListDeadLettersOptions,
  RedriveOptions,
  RedriveResult,
} from './dead-letter-options.js'
import { type DeadLetterEntry, deadLetterDataKey, deadLetterIndexKey } from './dead-letter-store.js'
import { withDeadline } from './deadline.js'
import { type AnyJobDefinition, versionedJobName } from './define-job.js'
import { DeadLetterNotFoundError, JobsClosedError, JobsError, JobsOptionsError } from './errors.js'
import { checkedRedrivePayload, redriveJobId, redriveJobOptions } from './redrive-job.js'

/**
 * Opens the dead-letter queue of a queue; workers fill it, this reads and redrives it.
 *
 * @example
 * ```ts
 * const dlq = createDeadLetterQueue({ connection: redis, queue: 'resize-image' })
 * for (const entry of await dlq.list({ limit: 10 })) console.log(entry.id, entry.reason)
 * await dlq.redrive({ filter: { errorCode: 'E_JOBS_PERMANENT' }, ratePerSecond: 20 })
 * ```
 */
export function createDeadLetterQueue(options: CreateDeadLetterQueueOptions): DeadLetterQueue {
  const prefix = keyPrefixOf(options.connection, options)
  return new RedisDeadLetterQueue(options.connection, options.queue, prefix, options.jobs ?? [])
}

const PAGE = 500
/** Longest `close()` waits for the BullMQ queue used by redrives to close. */
const CLOSE_TIMEOUT_MS = 5_000

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

class RedisDeadLetterQueue implements DeadLetterQueue {
  readonly queue: string
  readonly #prefix: string
  readonly #connection: RedisConnection
  readonly #client: Redis | Cluster
  readonly #ownsClient: boolean
  readonly #definitions = new Map<string, AnyJobDefinition>()
  #bullQueue: Queue | undefined
  #closed = false

  constructor(connection: RedisConnection, queue: string, prefix: string, jobs: readonly AnyJobDefinition[]) {
    if (queue.includes(':')) throw new JobsOptionsError('queue', `queue name "${queue}" must not contain ':'`)
    for (const job of jobs) {
      if (job.queue !== queue) {
        throw new JobsOptionsError(
          'jobs',
          `job "${job.name}" belongs to queue "${job.queue}", not "${queue}"`,
        )
      }
      this.#definitions.set(job.name, job)
    }
    this.queue = queue
    this.#prefix = prefix
    this.#connection = connection
    const { client, owned } = commandClient(connection)
    this.#client = client
    this.#ownsClient = owned
  }

  get #indexKey(): string {
    return deadLetterIndexKey(this.#prefix, this.queue)
  }

  get #dataKey(): string {
    return deadLetterDataKey(this.#prefix, this.queue)
  }

  async count(): Promise<number> {
    this.#live('count')
    return this.#client.zcard(this.#indexKey)
  }

  /** Walks entries oldest first in pages, yielding the ones that match. */
  async *#scan(filter: DeadLetterFilter | undefined): AsyncGenerator<DeadLetterEntry> {
    if (filter?.ids) {
      const values = filter.ids.length ? await this.#client.hmget(this.#dataKey, ...filter.ids) : []
      for (const value of values) {
        if (value === null) continue
        const entry = JSON.parse(value) as DeadLetterEntry
        if (matchesFilter(entry, filter)) yield entry
      }
      return
    }
    const min = filter?.since !== undefined ? toMillis(filter.since) : '-inf'
    const max = filter?.until !== undefined ? `(${toMillis(filter.until)}` : '+inf'
    for (let offset = 0; ; offset += PAGE) {
      const ids = await this.#client.zrangebyscore(this.#indexKey, min, max, 'LIMIT', offset, PAGE)
      if (ids.length === 0) return
      const values = await this.#client.hmget(this.#dataKey, ...ids)
      for (const value of values) {
        if (value === null) continue
        const entry = JSON.parse(value) as DeadLetterEntry
        if (matchesFilter(entry, filter)) yield entry
      }
      if (ids.length < PAGE) return
    }
  }

  async list(options: ListDeadLettersOptions = {}): Promise<DeadLetterEntry[]> {
    this.#live('list')
    const offset = options.offset ?? 0
    const limit = options.limit ?? 100
    const out: DeadLetterEntry[] = []
    let seen = 0
    for await (const entry of this.#scan(options.filter)) {
      if (seen++ < offset) continue
      out.push(entry)
      if (out.length >= limit) break
    }
    return out
  }

  async inspect(id: string): Promise<DeadLetterEntry> {
    this.#live('inspect')
    const value = await this.#client.hget(this.#dataKey, id)
    if (value === null) throw new DeadLetterNotFoundError(this.queue, id)
    return JSON.parse(value) as DeadLetterEntry
  }

  #queue(): Queue {
    this.#bullQueue ??= openQueue(this.queue, this.#connection, this.#prefix)
    return this.#bullQueue
  }

  async redrive(options: RedriveOptions = {}): Promise<RedriveResult> {
    this.#live('redrive')
    const limit = options.limit ?? Number.POSITIVE_INFINITY
    const ratePerSecond = options.ratePerSecond ?? 50
    if (!(ratePerSecond > 0)) {
      throw new JobsOptionsError(
        'ratePerSecond',
        `redrive ratePerSecond must be a number above 0, got ${ratePerSecond}`,
      )
    }
    const interval = 1000 / ratePerSecond
    // Collected first: removing entries while paging through the index would skip some.
    const entries: DeadLetterEntry[] = []
    for await (const entry of this.#scan(options.filter)) {
      if (entries.length >= limit) break
      entries.push(entry)
    }
    if (options.transform) {
      const unknown = entries.find((entry) => !this.#definitions.has(entry.name))
      if (unknown) {
        throw new JobsOptionsError(
          'transform',
          `redrive with a transform needs the definition of job "${unknown.name}" to check its output; pass it in createDeadLetterQueue({ jobs })`,
        )
      }
    }
    const redriven: Array<{ entryId: string; jobId: string }> = []
    const rejected: Array<{ entryId: string; error: Error }> = []
    let next = Date.now()
    for (const entry of entries) {
      let payload: unknown
      try {
        payload = await checkedRedrivePayload(this.#definitions, entry, options.transform)
      } catch (error) {
        rejected.push({ entryId: entry.id, error: error instanceof Error ? error : new Error(String(error)) })
        continue
      }
      const wait = next - Date.now()
      if (wait > 0) await sleep(wait)
      next = Math.max(Date.now(), next) + interval
      const jobId = redriveJobId(entry)
      // Added, then the entry deleted: a redrive that dies between the two and is run again adds
      // under the same ID, which BullMQ ignores, even once the first add has run and been removed
      // (the dedup marker, deleted with the entry, outlives the job).
      await this.#queue().add(
        versionedJobName(entry.name, entry.version),
        payload,
        redriveJobOptions(entry, jobId),
      )
      await this.#client
        .multi()
        .zrem(this.#indexKey, entry.id)
        .hdel(this.#dataKey, entry.id)
        .del(queueKey(this.#prefix, this.queue, `de:${jobId}`))
        .exec()
      redriven.push({ entryId: entry.id, jobId })
    }
    return { redriven, rejected }
  }

  async remove(id: string): Promise<boolean> {
    this.#live('remove')
    const result = await this.#client.multi().zrem(this.#indexKey, id).hdel(this.#dataKey, id).exec()
    return Number(result?.[0]?.[1] ?? 0) > 0
  }

  async purge(filter?: DeadLetterFilter): Promise<number> {
    this.#live('purge')
    const ids: string[] = []
    for await (const entry of this.#scan(filter)) ids.push(entry.id)
    for (let i = 0; i < ids.length; i += PAGE) {
      const chunk = ids.slice(i, i + PAGE)
      await this.#client
        .multi()
        .zrem(this.#indexKey, ...chunk)
        .hdel(this.#dataKey, ...chunk)
        .exec()
    }
    return ids.length
  }

  /** Throws `JobsClosedError` once closed (its own client is gone; the user's stays open). */
  #live(method: string): void {
    if (this.#closed) throw new JobsClosedError('deadLetterQueue', method)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const queue = this.#bullQueue
    this.#bullQueue = undefined
    // Bounded: closing waits on Redis, which may be what is down.
    await withDeadline(
      queue?.close() ?? Promise.resolve(),
      CLOSE_TIMEOUT_MS,
      () =>
        new JobsError('E_JOBS_CLOSE_TIMEOUT', `closing the queue took over ${CLOSE_TIMEOUT_MS} ms`, {
          context: { method: 'close' },
        }),
    ).catch(() => {})
    if (this.#ownsClient) this.#client.disconnect()
  }
}
