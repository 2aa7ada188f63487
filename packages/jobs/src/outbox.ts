import type { JobsOptions, Telemetry } from 'bullmq'
import type { Generated, Kysely, Transaction } from 'kysely'
import { type AnyJobDefinition, type JobDefinition, versionedJobName } from './define-job.js'
import { InvalidPayloadError, JobsOptionsError } from './errors.js'
import { bullJobOptions, type EnqueueOptions, idempotentJobId } from './job-options.js'
import { validateForEnqueue } from './validate-payload.js'

/** The default outbox table name. */
export const DEFAULT_OUTBOX_TABLE = 'scale_jobs_outbox'

/** @internal the outbox table as Kysely sees it. */
export interface OutboxRow {
  id: Generated<string>
  queue: string
  name: string
  payload: unknown
  options: unknown
  created_at: Date
}

/** @internal */
export type OutboxDatabase = Record<string, OutboxRow>

/**
 * @internal What the row keeps for the relay: the BullMQ options computed at enqueue (attempts,
 * backoff, retention, priority, the idempotency key's job ID), and the delay, which the relay
 * counts from `created_at` so time spent in the outbox is not added to it.
 */
export interface StoredOptions {
  bull: JobsOptions
  delayMs?: number
}

/** What `outbox.enqueue` returns. */
export interface OutboxEnqueued {
  /** The outbox row ID (bigserial, as a string). */
  readonly outboxId: string
  /** The BullMQ job ID the relay will use: `o<outboxId>`, or the idempotency key's ID. */
  readonly jobId: string
}

export interface CreateOutboxOptions {
  /**
   * Table name (optionally `schema.table`).
   * @default 'scale_jobs_outbox'
   */
  table?: string
  /**
   * BullMQ telemetry (e.g. `new BullMQOtel(...)` from `bullmq-otel`): the trace context active at
   * `enqueue` is stored in the row, so the job's run joins the trace of the request that wrote it,
   * however much later the relay moves it.
   * @default none
   */
  telemetry?: Telemetry
}

/** Writes jobs into the outbox table inside the caller's transaction. */
export interface Outbox {
  readonly table: string
  /**
   * Validates the payload and inserts one outbox row with `db`, which should be the caller's
   * transaction: the job exists if and only if that transaction commits.
   */
  enqueue<DB, Input, Output, Result>(
    db: Kysely<DB> | Transaction<DB>,
    job: JobDefinition<Input, Output, Result>,
    payload: Input,
    options?: EnqueueOptions,
  ): Promise<OutboxEnqueued>
  /** Validates all payloads, then inserts all rows in one statement. */
  enqueueMany<DB, Input, Output, Result>(
    db: Kysely<DB> | Transaction<DB>,
    job: JobDefinition<Input, Output, Result>,
    items: ReadonlyArray<{ payload: Input; options?: EnqueueOptions }>,
  ): Promise<OutboxEnqueued[]>
  /** Creates the outbox table if it does not exist (idempotent; call it from your migrations). */
  createTable<DB>(db: Kysely<DB> | Transaction<DB>): Promise<void>
}

/** @internal the BullMQ job ID for an outbox row: its ID, prefixed because BullMQ refuses integer IDs. */
export function outboxJobId(outboxId: string): string {
  return `o${outboxId}`
}

/**
 * Creates the transactional outbox: enqueue jobs in the same Postgres transaction as your data
 * (nothing is enqueued if it rolls back); `createOutboxRelay` then moves committed rows to BullMQ.
 *
 * @example
 * ```ts
 * const outbox = createOutbox()
 * await outbox.createTable(db)
 * await db.transaction().execute(async (trx) => {
 *   const photo = await trx.insertInto('photos').values(row).returning('id').executeTakeFirstOrThrow()
 *   await outbox.enqueue(trx, resizeImage, { photoId: photo.id, width: 640 })
 * })
 * ```
 */
export function createOutbox(options: CreateOutboxOptions = {}): Outbox {
  const table = options.table ?? DEFAULT_OUTBOX_TABLE
  if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/.test(table)) {
    throw new JobsOptionsError(
      'table',
      `outbox table "${table}" must be an identifier, optionally schema-qualified`,
    )
  }
  return new KyselyOutbox(table, options.telemetry)
}

function storedOptions(
  job: AnyJobDefinition,
  options: EnqueueOptions | undefined,
  traceMetadata: string | undefined,
): StoredOptions {
  const bull = bullJobOptions(job, options)
  // BullMQ reads `telemetry.metadata` as the parent context of the job's spans, even when the
  // relay that adds it traces nothing itself.
  if (traceMetadata !== undefined) bull.telemetry = { metadata: traceMetadata }
  // The relay sets the delay, counted from the enqueue (see StoredOptions).
  const { delay: delayMs, ...rest } = bull
  const stored: StoredOptions = { bull: rest }
  if (delayMs !== undefined) stored.delayMs = delayMs
  return stored
}

class KyselyOutbox implements Outbox {
  readonly table: string
  readonly #telemetry: Telemetry | undefined

  constructor(table: string, telemetry: Telemetry | undefined) {
    this.table = table
    this.#telemetry = telemetry
  }

  async enqueue<DB, Input, Output, Result>(
    db: Kysely<DB> | Transaction<DB>,
    job: JobDefinition<Input, Output, Result>,
    payload: Input,
    options?: EnqueueOptions,
  ): Promise<OutboxEnqueued> {
    const [first] = await this.enqueueMany(db, job, [
      options === undefined ? { payload } : { payload, options },
    ])
    return first as OutboxEnqueued
  }

  async enqueueMany<DB, Input, Output, Result>(
    db: Kysely<DB> | Transaction<DB>,
    job: JobDefinition<Input, Output, Result>,
    items: ReadonlyArray<{ payload: Input; options?: EnqueueOptions }>,
  ): Promise<OutboxEnqueued[]> {
    if (items.length === 0) return []
    // Every payload is checked before the insert: a failed insert would abort the caller's transaction.
    const payloads: string[] = []
    for (const item of items) {
      let decoded = validateForEnqueue(job, item.payload)
      if (decoded instanceof Promise) decoded = await decoded
      payloads.push(jsonbText(job.name, decoded))
    }
    const now = new Date()
    const name = versionedJobName(job.name, job.version)
    const manager = this.#telemetry?.contextManager
    const traceMetadata = manager?.getMetadata(manager.active())
    // The user's database type does not know our table; the row shape is ours to keep right.
    const outboxDb = db as unknown as Kysely<OutboxDatabase>
    const rows = await outboxDb
      .insertInto(this.table)
      .values(
        items.map((item, i) => ({
          queue: job.queue,
          name,
          payload: payloads[i] as string,
          options: JSON.stringify(storedOptions(job, item.options, traceMetadata)),
          created_at: now,
        })),
      )
      .returning('id')
      .execute()
    return rows.map((row, i) => {
      const outboxId = String(row.id)
      const key = items[i]?.options?.idempotencyKey
      return { outboxId, jobId: key === undefined ? outboxJobId(outboxId) : idempotentJobId(job.name, key) }
    })
  }

  async createTable<DB>(db: Kysely<DB> | Transaction<DB>): Promise<void> {
    const outboxDb = db as unknown as Kysely<OutboxDatabase>
    await outboxDb.schema
      .createTable(this.table)
      .ifNotExists()
      .addColumn('id', 'bigserial', (col) => col.primaryKey())
      .addColumn('queue', 'text', (col) => col.notNull())
      .addColumn('name', 'text', (col) => col.notNull())
      .addColumn('payload', 'jsonb', (col) => col.notNull())
      .addColumn('options', 'jsonb', (col) => col.notNull())
      .addColumn('created_at', 'timestamptz', (col) => col.notNull())
      .execute()
  }
}

/** A UTF-16 surrogate without its pair. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
/** `true` if jsonb cannot hold `text`: a NUL character or a lone surrogate. */
const notInJsonb = (text: string) => text.includes('\u0000') || LONE_SURROGATE.test(text)

/**
 * `payload` as the JSON text of its `jsonb` column, or {@link InvalidPayloadError}. The schema
 * check (`validateForEnqueue`) already refuses what JSON cannot carry, but not for a job with
 * `validate: false`, so this refuses it again (BigInt, cycles, nesting too deep, a top-level
 * `undefined` or function), and also what JSON carries but `jsonb` refuses: a NUL character and
 * unpaired surrogates, which `producer.enqueue` accepts.
 */
function jsonbText(jobName: string, payload: unknown): string {
  let found: string | undefined
  let text: string | undefined
  try {
    text = JSON.stringify(payload, (key: string, value: unknown) => {
      if (found === undefined) {
        if (notInJsonb(key)) found = `the key ${JSON.stringify(key)}`
        else if (typeof value === 'string' && notInJsonb(value)) found = `the value at ${JSON.stringify(key)}`
      }
      return value
    })
  } catch (error) {
    throw refused(
      jobName,
      `cannot be stored as JSON: ${error instanceof Error ? error.message : String(error)}`,
    )
  }
  if (text === undefined)
    throw refused(jobName, `a payload of type ${typeof payload} cannot be stored as JSON`)
  if (found !== undefined) {
    throw refused(
      jobName,
      `${found} holds a NUL character or an unpaired surrogate, which the outbox table (PostgreSQL jsonb) cannot store`,
    )
  }
  return text
}

function refused(jobName: string, message: string): InvalidPayloadError {
  return new InvalidPayloadError(jobName, 'enqueue', [{ path: '', message }])
}
