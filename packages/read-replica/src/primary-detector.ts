import type { DatabaseNode } from './database-node.js'
import { type Lsn, parseLsn } from './lsn.js'
import { PrimaryLsnHistory } from './primary-lsn-history.js'
import type { RouterEventEmitter } from './router-events.js'

interface PrimaryRow {
  recovery: boolean
  lsn: string | null
}

const PRIMARY_CHECK = `select pg_is_in_recovery() as recovery,
  case when pg_is_in_recovery() then null else pg_current_wal_insert_lsn()::text end as lsn`

/**
 * Which configured primary host takes writes, and the WAL positions it was seen at: checked on
 * every monitor tick, re-detected (single-flight) when the current one is in recovery or gone.
 */
export class PrimaryDetector {
  readonly #primaries: readonly DatabaseNode[]
  readonly #checkTimeoutMs: number
  readonly #events: RouterEventEmitter
  #index = 0
  #confirmed = false
  #lsn: Lsn | undefined
  #detecting: Promise<DatabaseNode | undefined> | undefined
  /** when the primary was seen at which position (lag in seconds, futile waits) */
  readonly lsnHistory = new PrimaryLsnHistory()

  constructor(primaries: readonly DatabaseNode[], checkTimeoutMs: number, events: RouterEventEmitter) {
    this.#primaries = primaries
    this.#checkTimeoutMs = checkTimeoutMs
    this.#events = events
  }

  get primary(): DatabaseNode {
    return this.#primaries[this.#index] as DatabaseNode
  }

  get primaryLsn(): Lsn | undefined {
    return this.#lsn
  }

  /** The primary to write to; the first call probes the configured hosts so a replica listed first is never written. */
  async current(): Promise<DatabaseNode> {
    if (this.#confirmed || this.#primaries.length === 1) return this.primary
    return (await this.detect()) ?? this.primary
  }

  /**
   * Probes every configured primary host and switches to the first that is out of recovery
   * (the current one wins while it still is). Single-flight: concurrent callers share one probe.
   * Resolves undefined when no host accepts writes.
   */
  detect(): Promise<DatabaseNode | undefined> {
    this.#detecting ??= this.#probe().finally(() => {
      this.#detecting = undefined
    })
    return this.#detecting
  }

  /** The monitor's tick: the current primary still out of recovery (and where), else re-detect. */
  async check(): Promise<void> {
    try {
      const {
        rows: [row],
      } = await this.primary.queryWithin<PrimaryRow>(
        PRIMARY_CHECK,
        [],
        this.#checkTimeoutMs,
        `check of ${this.primary.name}`,
      )
      if (row?.recovery === false) {
        this.#confirmed = true
        this.#notePosition(parseLsn(row.lsn))
        return
      }
    } catch {
      // fall through to detection
    }
    await this.detect()
  }

  /** The router's own write reached `lsn` just now (a precise point for lag and delay estimates). */
  noteWritePosition(lsn: Lsn): void {
    if (this.#lsn === undefined || lsn > this.#lsn) this.#lsn = lsn
    this.lsnHistory.record(lsn, performance.now())
  }

  async #probe(): Promise<DatabaseNode | undefined> {
    const results = await Promise.all(
      this.#primaries.map((node) =>
        node.queryWithin<PrimaryRow>(PRIMARY_CHECK, [], this.#checkTimeoutMs, `probe of ${node.name}`).then(
          ({ rows: [row] }) => row,
          () => undefined,
        ),
      ),
    )
    const writable = (index: number) => results[index] !== undefined && results[index]?.recovery === false
    const chosen = writable(this.#index) ? this.#index : results.findIndex((_, index) => writable(index))
    if (chosen < 0) {
      this.#confirmed = false
      return undefined
    }
    if (chosen !== this.#index) {
      const from = this.primary.name
      this.#index = chosen
      this.#events.emit('primary-changed', { from, to: this.primary.name })
    }
    this.#confirmed = true
    this.#notePosition(parseLsn(results[chosen]?.lsn))
    return this.primary
  }

  #notePosition(lsn: Lsn | undefined): void {
    if (lsn === undefined) return
    this.#lsn = lsn
    this.lsnHistory.record(lsn, performance.now())
  }
}
