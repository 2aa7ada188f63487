import { type Kysely, sql } from 'kysely'

/** The steps of a bucket move, in order; the control table remembers which one a move is at. */
export type MoveStep = 'copying' | 'catching-up' | 'fenced' | 'published' | 'done'

/** One bucket move as stored in the control table. */
export interface MoveState {
  readonly bucket: number
  readonly source: string
  readonly target: string
  readonly step: MoveStep
  /** Copy progress: table index and the last primary key copied in it. */
  readonly copyTable: number
  readonly copiedKey: string | null
  /** How many captured changes were replayed onto the target so far. */
  readonly appliedChange: string
  /** When the bucket was fenced (the write pause started), ms since the Unix epoch. */
  readonly fencedAt: number | null
  /** How long writes to the bucket were refused, once published. */
  readonly pauseMs: number | null
}

// biome-ignore lint/suspicious/noExplicitAny: the control tables are not part of the user's schema
type AnyKysely = Kysely<any>

const TABLE = `create table if not exists scale_shard_moves (
  bucket int primary key,
  source text not null,
  target text not null,
  step text not null,
  copy_table int not null default 0,
  copied_key text,
  applied_change bigint not null default 0,
  fenced_at bigint,
  pause_ms int,
  updated_at timestamptz not null default now()
)`

interface Row {
  bucket: number
  source: string
  target: string
  step: MoveStep
  copy_table: number
  copied_key: string | null
  applied_change: string
  fenced_at: string | null
  pause_ms: number | null
}

const toState = (row: Row): MoveState => ({
  bucket: row.bucket,
  source: row.source,
  target: row.target,
  step: row.step,
  copyTable: row.copy_table,
  copiedKey: row.copied_key,
  appliedChange: String(row.applied_change),
  fencedAt: row.fenced_at === null ? null : Number(row.fenced_at),
  pauseMs: row.pause_ms,
})

export class MoveStateStore {
  readonly #db: AnyKysely
  #created: Promise<unknown> | undefined

  constructor(db: AnyKysely) {
    this.#db = db
  }

  async #ensure(): Promise<void> {
    // A failed create is forgotten, so a call after a database blip tries again.
    this.#created ??= sql
      .raw(TABLE)
      .execute(this.#db)
      .catch((error: unknown) => {
        this.#created = undefined
        throw error
      })
    await this.#created
  }

  async all(): Promise<MoveState[]> {
    await this.#ensure()
    const { rows } = await sql<Row>`select * from scale_shard_moves order by bucket`.execute(this.#db)
    return rows.map(toState)
  }

  async get(bucket: number): Promise<MoveState | undefined> {
    await this.#ensure()
    const { rows } = await sql<Row>`select * from scale_shard_moves where bucket = ${bucket}`.execute(
      this.#db,
    )
    return rows[0] ? toState(rows[0]) : undefined
  }

  /** Starts a move (replacing a finished one of the same bucket). */
  async begin(bucket: number, source: string, target: string): Promise<MoveState> {
    await this.#ensure()
    const { rows } = await sql<Row>`
      insert into scale_shard_moves (bucket, source, target, step) values (${bucket}, ${source}, ${target}, 'copying')
      on conflict (bucket) do update set source = excluded.source, target = excluded.target, step = 'copying',
        copy_table = 0, copied_key = null, applied_change = 0, fenced_at = null, pause_ms = null, updated_at = now()
      returning *`.execute(this.#db)
    return toState(rows[0] as Row)
  }

  async update(
    bucket: number,
    patch: Partial<
      Pick<MoveState, 'step' | 'copyTable' | 'copiedKey' | 'appliedChange' | 'fencedAt' | 'pauseMs'>
    >,
  ): Promise<void> {
    const sets = [
      patch.step !== undefined ? sql`step = ${patch.step}` : undefined,
      patch.copyTable !== undefined ? sql`copy_table = ${patch.copyTable}` : undefined,
      patch.copiedKey !== undefined ? sql`copied_key = ${patch.copiedKey}` : undefined,
      patch.appliedChange !== undefined ? sql`applied_change = ${patch.appliedChange}` : undefined,
      patch.fencedAt !== undefined ? sql`fenced_at = ${patch.fencedAt}` : undefined,
      patch.pauseMs !== undefined ? sql`pause_ms = ${patch.pauseMs}` : undefined,
      sql`updated_at = now()`,
    ].filter((part) => part !== undefined)
    await sql`update scale_shard_moves set ${sql.join(sets)} where bucket = ${bucket}`.execute(this.#db)
  }

  /** Forgets an abandoned move: the next `moveBucket` of the bucket starts afresh. */
  async forget(bucket: number): Promise<void> {
    await this.#ensure()
    await sql`delete from scale_shard_moves where bucket = ${bucket}`.execute(this.#db)
  }
}
