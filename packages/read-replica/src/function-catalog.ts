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

/**
 * Which functions are known read-only: the primary's `pg_proc` (loaded once, reloaded after DDL),
 * a short list of volatile-but-read-only functions, and the user's declarations. Anything not
 * known read-only, including every function while the catalog is not loaded, is treated as
 * writing: the query goes to the primary.
 */
export class FunctionCatalog {
  readonly #declaredReadOnly: ReadonlySet<string>
  readonly #declaredWriting: ReadonlySet<string>
  #serverReadOnly: ReadonlySet<string> | undefined
  #loading: Promise<void> | undefined
  #generation = 0
  /** bumped whenever the answer for some name may change; routing caches key on it */
  version = 0

  constructor(declarations: FunctionDeclarations) {
    this.#declaredReadOnly = new Set([
      ...VOLATILE_BUT_READ_ONLY,
      ...spellings(declarations.readOnlyFunctions),
    ])
    this.#declaredWriting = new Set([...STABLE_BUT_WRITING, ...spellings(declarations.writingFunctions)])
  }

  get loaded(): boolean {
    return this.#serverReadOnly !== undefined
  }

  /** True only when a call of `name` (`['f']` or `['schema', 'f']`) provably neither writes nor changes the session. */
  isReadOnly(name: readonly string[]): boolean {
    const bare = name[name.length - 1] as string
    const qualified = name.join('.')
    if (this.#declaredWriting.has(bare) || this.#declaredWriting.has(qualified)) return false
    if (this.#declaredReadOnly.has(qualified) || this.#declaredReadOnly.has(bare)) return true
    return this.#serverReadOnly?.has(bare) === true
  }

  /** Loads (or reloads) the catalog from `node`; concurrent callers share one load. */
  load(node: DatabaseNode, timeoutMs: number): Promise<void> {
    this.#loading ??= (async () => {
      const generation = this.#generation
      try {
        const { rows } = await node.queryWithin<{ name: string; read_only: boolean }>(
          READ_ONLY_NAMES,
          [],
          timeoutMs,
          `function catalog of ${node.name}`,
        )
        // A DDL statement ran while this was loading: its answer may already be old.
        if (generation !== this.#generation) return
        this.#serverReadOnly = new Set(rows.filter((row) => row.read_only).map((row) => row.name))
        this.version++
      } finally {
        this.#loading = undefined
      }
    })()
    return this.#loading
  }

  /**
   * DDL ran through the router: a function may have been created, replaced or dropped. Until the
   * reload finishes, no catalog function counts as read-only (its volatility may have changed).
   */
  invalidate(): void {
    this.#generation++
    this.#serverReadOnly = undefined
    this.version++
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
