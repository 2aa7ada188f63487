import { type JobsOptions, Queue } from 'bullmq'
import type { Kysely } from 'kysely'
import { bullConnection, checkPrefix, DEFAULT_PREFIX, type RedisConnection } from './connection.js'
import { OutboxRelayError } from './errors.js'
import { type Logger, silentLogger } from './logger.js'
import { DEFAULT_OUTBOX_TABLE, type OutboxDatabase, outboxJobId, type StoredOptions } from './outbox.js'

export interface CreateOutboxRelayOptions<DB> {
  /** Kysely instance on the database that holds the outbox table. */
  db: Kysely<DB>
  /** Redis the jobs go to. */
  connection: RedisConnection
  /** @default '{jobs}' */
  prefix?: string
  /** @default 'scale_jobs_outbox' */
  table?: string
  /**
   * Rows moved per transaction.
   * @default 500
   */
  batchSize?: number
  /**
   * Wait between polls when the outbox was empty (a full batch polls again at once).
   * @default 200
   */
  pollIntervalMs?: number
  /** pino-compatible logger. @default silent */
  logger?: Logger
  /**
   * Called after a batch is in BullMQ and before its rows are deleted (for metrics; must not throw).
   * @default none
   */
  onBatchAdded?: (batch: { readonly jobIds: readonly string[] }) => void
}

/** Moves committed outbox rows to BullMQ. Run one or several per deployment. */
export interface OutboxRelay {
  /** Starts the polling loop. */
  start(): void
  /** Moves one batch; returns how many rows it moved. */
  relayOnce(): Promise<number>
  /** Rows moved since start. */
  relayed(): number
  /** Stops polling after the current batch and closes the BullMQ queues. */
  stop(): Promise<void>
}

/**
 * Creates the relay that moves committed outbox rows to BullMQ.
 *
 * Each batch runs in one Postgres transaction: `SELECT ... FOR UPDATE SKIP LOCKED` (so several
 * relays share the work without taking the same rows), add the jobs to BullMQ with the row's
 * ID as job ID, `DELETE` the rows, commit. A relay that dies after the add and before the commit
 * leaves the rows in place; the next relay adds them again under the same job IDs and BullMQ
 * ignores an add whose ID exists. Nothing is lost and nothing doubles — provided finished jobs are
 * kept longer than a relay takes to come back (`removeOnComplete`, default the last 10,000).
 *
 * @example
 * ```ts
 * const relay = createOutboxRelay({ db, connection: redis })
 * relay.start()
 * process.on('SIGTERM', () => relay.stop())
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
  readonly #logger: Logger
  readonly #onBatchAdded: ((batch: { readonly jobIds: readonly string[] }) => void) | undefined
  readonly #queues = new Map<string, Queue>()
  #running = false
  #loop: Promise<void> | undefined
  #wake: (() => void) | undefined
  #relayed = 0

  constructor(options: CreateOutboxRelayOptions<OutboxDatabase>) {
    this.#db = options.db
    this.#connection = options.connection
    this.#prefix = options.prefix ?? DEFAULT_PREFIX
    checkPrefix(options.connection, this.#prefix)
    this.#table = options.table ?? DEFAULT_OUTBOX_TABLE
    this.#batchSize = options.batchSize ?? 500
    this.#pollIntervalMs = options.pollIntervalMs ?? 200
    this.#logger = options.logger ?? silentLogger
    this.#onBatchAdded = options.onBatchAdded
  }

  relayed(): number {
    return this.#relayed
  }

  #queue(name: string): Queue {
    let queue = this.#queues.get(name)
    if (!queue) {
      queue = new Queue(name, { connection: bullConnection(this.#connection, false), prefix: this.#prefix })
      queue.on('error', () => {})
      this.#queues.set(name, queue)
    }
    return queue
  }

  async relayOnce(): Promise<number> {
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
        if (rows.length === 0) return 0
        const now = Date.now()
        const byQueue = new Map<string, Array<{ name: string; data: unknown; opts: JobsOptions }>>()
        for (const row of rows) {
          const stored = row.options as StoredOptions
          const opts: JobsOptions = {
            ...stored.bull,
            jobId: stored.bull.jobId ?? outboxJobId(String(row.id)),
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
        for (const [queue, jobs] of byQueue) await this.#queue(queue).addBulk(jobs)
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
        return rows.length
      })
      this.#relayed += moved
      return moved
    } catch (error) {
      throw new OutboxRelayError(error)
    }
  }

  start(): void {
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

  async stop(): Promise<void> {
    this.#running = false
    this.#wake?.()
    await this.#loop
    const queues = [...this.#queues.values()]
    this.#queues.clear()
    await Promise.all(queues.map((queue) => queue.close()))
  }
}
