import type { Queue } from 'bullmq'
import type { Cluster, Redis } from 'ioredis'
import { commandClient, keyPrefixOf, openQueue, queueKey, type RedisConnection } from './connection.js'
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
import { BACKOFF_TYPE } from './job-options.js'
import { decodedPayload, migratePayload, validatePayload } from './validate-payload.js'

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

function toMillis(value: Date | number): number {
  return value instanceof Date ? value.getTime() : value
}

function matches(entry: DeadLetterEntry, filter: DeadLetterFilter | undefined): boolean {
  if (!filter) return true
  if (filter.ids && !filter.ids.includes(entry.id)) return false
  if (filter.name !== undefined && entry.name !== filter.name) return false
  if (filter.errorCode !== undefined && entry.errorCode !== filter.errorCode) return false
  if (filter.reason !== undefined) {
    const ok =
      typeof filter.reason === 'string'
        ? entry.reason.includes(filter.reason)
        : filter.reason.test(entry.reason)
    if (!ok) return false
  }
  if (filter.since !== undefined && entry.failedAt < toMillis(filter.since)) return false
  if (filter.until !== undefined && entry.failedAt >= toMillis(filter.until)) return false
  if (filter.where && !filter.where(entry)) return false
  return true
}

/**
 * `abc` failed at T → `abc-rT`; `abc-rT` failed at U → `abc-rU`: the redriven job's ID. Stable for
 * one entry, so a redrive interrupted and run again does not make a second job; distinct for two
 * failures of one reused job ID (an idempotency key enqueued again after its first job was
 * removed), so the second redrive is not swallowed by the first one's retained job.
 */
function redriveJobId(entry: DeadLetterEntry): string {
  const base = /^(.*)-r\d+$/.exec(entry.id)?.[1] ?? entry.id
  return `${base}-r${entry.failedAt}`
}

/** Matches defineJob's default, for entries written before retention was recorded. */
const DEFAULT_RETENTION = { count: 10_000 }

/** A redriven job's BullMQ dedup marker outlives its removal (only if a redrive dies mid-way). */
const REDRIVE_DEDUP_TTL_MS = 86_400_000

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
        if (matches(entry, filter)) yield entry
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
        if (matches(entry, filter)) yield entry
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
        payload = await this.#checkedPayload(entry, options.transform)
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
      await this.#queue().add(versionedJobName(entry.name, entry.version), payload, {
        jobId,
        deduplication: { id: jobId, ttl: REDRIVE_DEDUP_TTL_MS },
        attempts: entry.attempts,
        backoff: { type: BACKOFF_TYPE },
        removeOnComplete: entry.removeOnComplete ?? DEFAULT_RETENTION,
        removeOnFail: entry.removeOnFail ?? DEFAULT_RETENTION,
        ...(entry.priority !== undefined && entry.priority > 0 && { priority: entry.priority }),
      })
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

  /**
   * The payload to enqueue again, checked as the worker will check it: JSON round trip, then the
   * migrations from the entry's version and the schema. Without a definition (and no transform)
   * the stored payload goes back as it is, as BullMQ stored it.
   */
  async #checkedPayload(
    entry: DeadLetterEntry,
    transform: ((entry: DeadLetterEntry) => unknown) | undefined,
  ): Promise<unknown> {
    const payload = transform ? transform(entry) : entry.payload
    const definition = this.#definitions.get(entry.name)
    if (!definition) return payload
    // What the worker will read; refuses what JSON cannot carry (BigInt, undefined, circular).
    const stored = decodedPayload(definition, payload)
    // Migrations may change their input in place: they get a copy, the stored value stays as is.
    const upgraded = migratePayload(definition, entry.version, decodedPayload(definition, payload))
    const checked = validatePayload(definition, upgraded, 'enqueue')
    if (checked instanceof Promise) await checked
    return stored
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
