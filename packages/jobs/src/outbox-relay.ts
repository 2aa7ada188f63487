import type { JobsOptions, Queue } from 'bullmq'
import type { Cluster, Redis } from 'ioredis'
import type { Kysely } from 'kysely'
import { commandClient, keyPrefixOf, openQueue, queueKey, type RedisConnection } from './connection.js'
import { withDeadline } from './deadline.js'
import {
  EnqueueTimeoutError,
  JobsClosedError,
  JobsError,
  JobsOptionsError,
  OutboxRelayError,
} from './errors.js'
import { type Logger, silentLogger } from './logger.js'
import { Metrics } from './metrics.js'
import { DEFAULT_OUTBOX_TABLE, type OutboxDatabase, outboxJobId, type StoredOptions } from './outbox.js'
import type { CreateOutboxRelayOptions, OutboxRelay } from './outbox-relay-options.js'

/**
 * Creates the relay that moves committed outbox rows to BullMQ.
 *
 * Each batch runs in one Postgres transaction: `SELECT ... FOR UPDATE SKIP LOCKED` (so several
 * relays share the work without taking the same rows), add the jobs to BullMQ with the row's
 * ID as job ID, `DELETE` the rows, commit. A relay that dies after the add and before the commit
 * leaves the rows in place; the next relay adds them again under the same job IDs, and BullMQ
 * ignores them: the job ID still exists, or, if the job already ran and `removeOnComplete` removed
 * it, its BullMQ deduplication marker (set in the same script as the add) still does, for
 * `dedupWindowMs`. Nothing is lost and nothing doubles.
 *
 * @example
 * ```ts
 * const relay = createOutboxRelay({ db, connection: redis })
 * relay.start()
 * shutdownOnSignal([relay]) // or call relay.close() from your own shutdown
 * ```
 */
export function createOutboxRelay<DB>(options: CreateOutboxRelayOptions<DB>): OutboxRelay {
  return new PollingOutboxRelay(options as unknown as CreateOutboxRelayOptions<OutboxDatabase>)
}

class PollingOutboxRelay implements OutboxRelay {
  readonly #db: Kysely<OutboxDatabase>
  readonly #connection: RedisConnection
  readonly #prefix: string
  readonly #table: string
  readonly #batchSize: number
  readonly #pollIntervalMs: number
  readonly #dedupWindowMs: number
  readonly #enqueueTimeoutMs: number
  readonly #logger: Logger
  readonly #metrics: Metrics
  readonly #onBatchAdded: ((batch: { readonly jobIds: readonly string[] }) => void) | undefined
  readonly #queues = new Map<string, Queue>()
  readonly #client: Redis | Cluster
  readonly #ownsClient: boolean
  #running = false
  #closed = false
  #loop: Promise<void> | undefined
  #closing: Promise<void> | undefined
  #wake: (() => void) | undefined
  #relayed = 0

  constructor(options: CreateOutboxRelayOptions<OutboxDatabase>) {
    this.#db = options.db
    this.#connection = options.connection
    this.#prefix = keyPrefixOf(options.connection, options)
    this.#table = options.table ?? DEFAULT_OUTBOX_TABLE
    this.#batchSize = options.batchSize ?? 500
    this.#pollIntervalMs = options.pollIntervalMs ?? 200
    this.#dedupWindowMs = options.dedupWindowMs ?? 86_400_000
    this.#enqueueTimeoutMs = options.enqueueTimeoutMs ?? 10_000
    if (!(this.#enqueueTimeoutMs > 0)) {
      throw new JobsOptionsError(
        'enqueueTimeoutMs',
        `outbox relay enqueueTimeoutMs must be above 0, got ${this.#enqueueTimeoutMs}`,
      )
    }
    // A batch size of 0 would make every batch look full and the loop poll without pause.
    if (!(Number.isInteger(this.#batchSize) && this.#batchSize >= 1)) {
      throw new JobsOptionsError(
        'batchSize',
        `outbox relay batchSize must be an integer >= 1, got ${this.#batchSize}`,
      )
    }
    if (!(this.#pollIntervalMs >= 0) || !(this.#dedupWindowMs >= 1)) {
      throw new JobsOptionsError(
        'pollIntervalMs',
        'outbox relay pollIntervalMs must be >= 0 and dedupWindowMs >= 1',
      )
    }
    this.#logger = options.logger ?? silentLogger
    this.#metrics = new Metrics(options.metrics, this.#logger)
    this.#onBatchAdded = options.onBatchAdded
    const { client, owned } = commandClient(options.connection)
    this.#client = client
    this.#ownsClient = owned
  }

  relayed(): number {
    return this.#relayed
  }

  #queue(name: string): Queue {
    let queue = this.#queues.get(name)
    if (!queue) {
      queue = openQueue(name, this.#connection, this.#prefix)
      this.#queues.set(name, queue)
    }
    return queue
  }

  async relayOnce(): Promise<number> {
    // Its queues are closed: a batch now would open new ones that nothing closes.
    if (this.#closed) throw new JobsClosedError('outboxRelay', 'relayOnce')
    try {
      const moved = await this.#db.transaction().execute(async (trx) => {
        const rows = await trx
          .selectFrom(this.#table)
          .select(['id', 'queue', 'name', 'payload', 'options', 'created_at'])
          .orderBy('id')
          .limit(this.#batchSize)
          .forUpdate()
          .skipLocked()
          .execute()
        if (rows.length === 0) return 0 as const
        const now = Date.now()
        const byQueue = new Map<string, Array<{ name: string; data: unknown; opts: JobsOptions }>>()
        for (const row of rows) {
          const stored = row.options as StoredOptions
          const jobId = stored.bull.jobId ?? outboxJobId(String(row.id))
          // The job ID alone deduplicates only while BullMQ keeps the job; the marker outlives it.
          const opts: JobsOptions = {
            ...stored.bull,
            jobId,
            deduplication: { id: jobId, ttl: this.#dedupWindowMs },
          }
          if (stored.delayMs !== undefined) {
            const remaining = new Date(row.created_at).getTime() + stored.delayMs - now
            if (remaining > 0) opts.delay = remaining
          }
          let list = byQueue.get(row.queue)
          if (!list) {
            list = []
            byQueue.set(row.queue, list)
          }
          list.push({ name: row.name, data: row.payload, opts })
        }
        for (const [queue, jobs] of byQueue) {
          await withDeadline(
            this.#queue(queue).addBulk(jobs),
            this.#enqueueTimeoutMs,
            () => new EnqueueTimeoutError('outbox batch', queue, this.#enqueueTimeoutMs),
          )
        }
        if (this.#onBatchAdded) {
          try {
            this.#onBatchAdded({
              jobIds: [...byQueue.values()].flatMap((jobs) => jobs.map((j) => String(j.opts.jobId))),
            })
          } catch {}
        }
        // Deleted only after Redis has the jobs; if this transaction never commits the rows stay
        // and are added again under the same job IDs, which BullMQ ignores.
        await trx
          .deleteFrom(this.#table)
          .where(
            'id',
            'in',
            rows.map((row) => row.id),
          )
          .execute()
        return byQueue
      })
      if (moved === 0) return 0
      let count = 0
      for (const [queue, jobs] of moved) {
        count += jobs.length
        this.#metrics.increment('jobs_outbox_relayed_total', { queue }, jobs.length)
        await this.#forgetMarkers(queue, jobs)
      }
      this.#relayed += count
      return count
    } catch (error) {
      this.#metrics.increment('jobs_outbox_batch_errors_total')
      throw new OutboxRelayError(error)
    }
  }

  /**
   * The rows are gone for good once the batch committed, so no relay can add them again: their
   * markers are deleted at once rather than left to expire (a day of markers at thousands of jobs
   * per second would be a lot of memory). Failing here costs only that memory, until the TTL.
   */
  async #forgetMarkers(queue: string, jobs: ReadonlyArray<{ opts: JobsOptions }>): Promise<void> {
    try {
      // BullMQ's key for a deduplication ID; every key shares the queue's hash tag (one slot).
      await withDeadline(
        this.#client.del(...jobs.map((job) => queueKey(this.#prefix, queue, `de:${String(job.opts.jobId)}`))),
        this.#enqueueTimeoutMs,
        () => new EnqueueTimeoutError('outbox dedup markers', queue, this.#enqueueTimeoutMs),
      )
    } catch (error) {
      this.#logger.warn(
        { err: error, queue },
        '[@scale/jobs] could not delete outbox dedup markers; they expire',
      )
    }
  }

  start(): void {
    if (this.#closed) throw new JobsClosedError('outboxRelay', 'start')
    if (this.#running) return
    this.#running = true
    this.#loop = this.#run()
  }

  async #run(): Promise<void> {
    while (this.#running) {
      let moved = 0
      try {
        moved = await this.relayOnce()
      } catch (error) {
        this.#logger.error({ err: error }, '[@scale/jobs] outbox relay batch failed; retrying')
      }
      if (moved < this.#batchSize && this.#running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.#pollIntervalMs)
          this.#wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        this.#wake = undefined
      }
    }
  }

  stop(): Promise<void> {
    return this.close()
  }

  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    this.#running = false
    this.#closed = true
    this.#wake?.()
    await this.#loop
    const queues = [...this.#queues.values()]
    this.#queues.clear()
    // Bounded: closing waits on Redis, which may be what is down.
    await withDeadline(
      Promise.all(queues.map((queue) => queue.close())),
      this.#enqueueTimeoutMs,
      () =>
        new JobsError('E_JOBS_CLOSE_TIMEOUT', `closing the queues took over ${this.#enqueueTimeoutMs} ms`, {
          context: { method: 'close' },
        }),
    ).catch(() => {})
    if (this.#ownsClient) this.#client.disconnect()
  }
}
