import type { DatabaseNode } from './database-node.js'

// Volatile in pg_proc, yet they neither write nor change the session: safe on a replica.
const VOLATILE_BUT_READ_ONLY = [
  'random',
  'random_normal',
  'gen_random_uuid',
  'uuid_generate_v4',
  'clock_timestamp',
  'timeofday',
  'pg_sleep',
  'pg_sleep_for',
  'pg_sleep_until',
  'pg_is_in_recovery',
  'pg_last_wal_replay_lsn',
  'pg_last_wal_receive_lsn',
  'pg_last_xact_replay_timestamp',
]
// Stable in pg_proc, yet they assign a transaction ID: a replica refuses them.
const STABLE_BUT_WRITING = ['txid_current', 'pg_current_xact_id']

// Per name, over every schema and overload: read-only only if no function of that name is
// volatile (a user's volatile `public.lower` makes every `lower(` unknown). Stable and immutable
// functions cannot run data-modifying statements (PostgreSQL refuses them there).
const READ_ONLY_NAMES = `select proname as name, bool_and(provolatile <> 'v') as read_only
  from pg_catalog.pg_proc group by proname`

export interface FunctionDeclarations {
  /** functions the user declares read-only (volatile ones that only read, e.g. a report function) */
  readonly readOnlyFunctions: readonly string[]
  /** functions the user declares writing (or changing session state), whatever the catalog says */
  readonly writingFunctions: readonly string[]
}

export interface CatalogSource {
  /** the nodes to read `pg_proc` from, in order: the primary, then (while it is down) replicas */
  readonly nodes: () => Promise<readonly DatabaseNode[]>
  readonly timeoutMs: number
  /** a failed load is retried at most this often */
  readonly retryMs: number
}

/**
 * Which functions are known read-only: the primary's `pg_proc` (loaded at `ready()` or first use,
 * reloaded after function DDL), a short list of volatile-but-read-only functions, and the user's
 * declarations. Anything not known read-only, including every function while the catalog is not
 * loaded, is treated as writing: the query goes to the primary.
 */
export class FunctionCatalog {
  readonly #declaredReadOnly: ReadonlySet<string>
  readonly #declaredWriting: ReadonlySet<string>
  readonly #source: CatalogSource
  #serverReadOnly: ReadonlySet<string> | undefined
  #loading: Promise<void> | undefined
  #generation = 0
  #retryAt = 0
  /** bumped whenever the answer for some name may change; routing caches key on it */
  version = 0

  constructor(declarations: FunctionDeclarations, source: CatalogSource) {
    this.#declaredReadOnly = new Set([
      ...VOLATILE_BUT_READ_ONLY,
      ...spellings(declarations.readOnlyFunctions),
    ])
    this.#declaredWriting = new Set([...STABLE_BUT_WRITING, ...spellings(declarations.writingFunctions)])
    this.#source = source
  }

  get loaded(): boolean {
    return this.#serverReadOnly !== undefined
  }

  /** The load in flight, if any (a query calling functions right after construction awaits it). */
  get pending(): Promise<void> | undefined {
    return this.#loading
  }

  /** True only when a call of `name` (`['f']` or `['schema', 'f']`) provably neither writes nor changes the session. */
  isReadOnly(name: readonly string[]): boolean {
    const bare = name[name.length - 1] as string
    const qualified = name.join('.')
    if (this.#declaredWriting.has(bare) || this.#declaredWriting.has(qualified)) return false
    if (this.#declaredReadOnly.has(qualified) || this.#declaredReadOnly.has(bare)) return true
    return this.#serverReadOnly?.has(bare) === true
  }

  /** Hot path: starts a load when the catalog is missing (a failed one at most every `retryMs`). */
  ensureLoading(): void {
    if (this.#serverReadOnly !== undefined || this.#loading) return
    const now = performance.now()
    if (now < this.#retryAt) return
    this.#retryAt = now + this.#source.retryMs
    this.load().catch(() => {})
  }

  /** Loads (or reloads) the catalog; concurrent callers share one load. */
  load(): Promise<void> {
    this.#loading ??= (async () => {
      const generation = this.#generation
      try {
        const rows = await this.#query(await this.#source.nodes())
        // Function DDL ran while this was loading: its answer may already be old.
        if (generation !== this.#generation) return
        this.#serverReadOnly = new Set(rows.filter((row) => row.read_only).map((row) => row.name))
        this.version++
      } finally {
        this.#loading = undefined
      }
    })()
    return this.#loading
  }

  // The catalog is the same on every node of a physical replication set: the primary first, a
  // replica when the primary cannot answer (reads keep working while it is down).
  async #query(nodes: readonly DatabaseNode[]): Promise<{ name: string; read_only: boolean }[]> {
    let lastError: unknown = new Error('no node to read the function catalog from')
    for (const node of nodes) {
      try {
        const { rows } = await node.queryWithin<{ name: string; read_only: boolean }>(
          READ_ONLY_NAMES,
          [],
          this.#source.timeoutMs,
          `function catalog of ${node.name}`,
        )
        return rows
      } catch (error) {
        lastError = error
      }
    }
    throw lastError
  }

  /**
   * Function DDL ran (or committed): a function may have been created, replaced or dropped.
   * Until the reload finishes, no catalog function counts as read-only.
   */
  changed(): void {
    this.#generation++
    this.#serverReadOnly = undefined
    this.version++
    this.#retryAt = 0
    if (this.#loading) this.#loading.finally(() => this.ensureLoading()).catch(() => {})
    else this.ensureLoading()
  }
}

// A declared name matches as written and as PostgreSQL folds an unquoted name (lower case).
function spellings(names: readonly string[]): string[] {
  return names.flatMap((name) => [name, name.toLowerCase()])
}

const FUNCTION_DDL =
  /\b(?:create|alter|drop)\b[\s\S]*\b(?:function|procedure|extension|schema|aggregate|language)\b/i

/** True when a statement may create, replace or drop functions (the catalog must be reloaded). */
export function mayChangeFunctions(sql: string): boolean {
  return FUNCTION_DDL.test(sql)
}
