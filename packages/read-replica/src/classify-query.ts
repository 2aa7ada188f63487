import type { CompiledQuery } from 'kysely'
import type { FunctionCatalog } from './function-catalog.js'
import { scanSql } from './sql-scan.js'

/** Why a query went where it went; carried by every routing event and counted in metrics. */
export type RouteReason =
  /** a plain read served by a replica with no position to wait for */
  | 'read'
  /** a read whose replica had already replayed the context's position */
  | 'ryw-ok'
  /** a read that waited (within the budget) for a replica to replay the context's position */
  | 'ryw-wait'
  /** a read sent to the primary because no replica reached the position within the budget */
  | 'ryw-primary'
  /** a read sent to the primary because the context's incoming token was rejected */
  | 'ryw-invalid-token'
  /** insert / update / delete / merge */
  | 'write'
  /** a select whose WITH clause contains a data-modifying statement */
  | 'write-cte'
  /** a select calling a function not known to be read-only (nextval, set_config, advisory locks, a volatile user function, …) */
  | 'volatile-function'
  /** SELECT … FOR UPDATE / FOR SHARE */
  | 'locking'
  /** schema changes: create / alter / drop / refresh … */
  | 'ddl'
  /** raw `sql` not run through db.replica(), or a select holding a statement keyword (set, lock, `;`, …) */
  | 'raw-sql'
  /** a transaction, started with transaction() or startTransaction() */
  | 'transaction'
  /** a pinned connection from db.connection() (or a stream) */
  | 'connection'
  /** db.primary() */
  | 'forced-primary'
  /** every replica is excluded (down, promoted, or a mix) */
  | 'no-replica'
  /** every replica is excluded for lagging beyond maxLagSeconds / maxLagBytes */
  | 'lagging'
  /** a retry of a read whose node failed before returning a result */
  | 'retry'

export interface QueryClass {
  /** true when the query is not provably read-only: it runs on the primary and advances the context's position */
  readonly write: boolean
  readonly reason: RouteReason
}

const WRITE_QUERY_KINDS = new Set(['InsertQueryNode', 'UpdateQueryNode', 'DeleteQueryNode', 'MergeQueryNode'])
const READ: QueryClass = { write: false, reason: 'read' }
const CACHE_LIMIT = 2_000
const CACHEABLE_LENGTH = 8_192

/**
 * Decides whether a query may run on a replica. The rule is one way round: only a query that is
 * provably read-only does. A select qualifies when its SQL (builder nodes and raw fragments
 * alike, as compiled) holds no statement keyword that writes or changes the session and every
 * function it calls is known read-only to the {@link FunctionCatalog}; anything unknown goes to
 * the primary. Raw `sql` goes to the primary unless run through `db.replica()`, where it is
 * judged like a select.
 */
export class QueryClassifier {
  readonly #catalog: FunctionCatalog
  // Compiled SQL repeats (parameters are placeholders), so a decision is cached per text and
  // catalog version: the hot path is one Map lookup.
  readonly #cache = new Map<string, QueryClass>()
  #cacheVersion = -1

  constructor(catalog: FunctionCatalog) {
    this.#catalog = catalog
  }

  classify(query: CompiledQuery, rawIsRead: boolean): QueryClass {
    const kind = query.query.kind
    if (kind === 'SelectQueryNode' || (kind === 'RawNode' && rawIsRead)) return this.#classifySql(query.sql)
    if (WRITE_QUERY_KINDS.has(kind)) return { write: true, reason: 'write' }
    if (kind === 'RawNode') return { write: true, reason: 'raw-sql' }
    return { write: true, reason: 'ddl' }
  }

  #classifySql(text: string): QueryClass {
    if (this.#cacheVersion !== this.#catalog.version) {
      this.#cache.clear()
      this.#cacheVersion = this.#catalog.version
    }
    const cached = this.#cache.get(text)
    if (cached) return cached
    const result = classifySelectSql(text, this.#catalog)
    if (text.length > CACHEABLE_LENGTH) return result
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear()
    this.#cache.set(text, result)
    return result
  }
}

function classifySelectSql(text: string, catalog: FunctionCatalog): QueryClass {
  const scan = scanSql(text)
  if (scan.unreadable) return { write: true, reason: 'raw-sql' }
  if (scan.writes === 'dml') return { write: true, reason: 'write-cte' }
  if (scan.writes === 'locking') return { write: true, reason: 'locking' }
  if (scan.writes === 'other') return { write: true, reason: 'raw-sql' }
  for (const name of scan.functions) {
    if (!catalog.isReadOnly(name)) return { write: true, reason: 'volatile-function' }
  }
  return READ
}
