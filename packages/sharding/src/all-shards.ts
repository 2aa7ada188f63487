import {
  type CompiledQuery,
  createQueryId,
  type Kysely,
  type OperationNode,
  type SelectQueryNode,
  sql,
} from 'kysely'
import { UnmergeableQueryError } from './errors.js'
import { type Divide, mergeShardRows } from './merge/merge-rows.js'
import { planSelect } from './merge/plan-select.js'
import type { Observability } from './observability.js'
import { deadline } from './options.js'
import { fanOut, type ScatterOptions, type ScatterResult } from './scatter.js'

/** A Kysely select query builder (anything that compiles to a SELECT). */
export interface SelectLike<O> {
  toOperationNode(): OperationNode
  compile(): CompiledQuery<O>
}

/** Keyless queries: they must say so. */
export interface AllShards<DB> {
  /** Runs `query` on every shard (in parallel, each under the deadline); rows are concatenated, unordered. */
  each<R>(
    query: (db: Kysely<DB>, shard: string) => Promise<R[]>,
    options?: ScatterOptions,
  ): Promise<ScatterResult<R>>
  /**
   * Runs one SELECT on every shard and merges the rows into what a single database holding all
   * of them would answer: ORDER BY (also by columns not selected), LIMIT/OFFSET (each shard
   * returns limit + offset rows, the merge applies both again), COUNT/SUM/MIN/MAX, AVG as
   * total SUM / total COUNT, GROUP BY with HAVING. A query it cannot merge exactly (DISTINCT,
   * window functions, COUNT(DISTINCT), expressions over aggregates, UNION, ...) is refused with
   * `UnmergeableQueryError` before anything runs.
   *
   * @example
   * ```ts
   * const { rows } = await db.allShards().select((db) =>
   *   db.selectFrom('photo').select(['user_id', (eb) => eb.fn.countAll().as('n')]).groupBy('user_id').orderBy('n', 'desc').limit(10),
   * )
   * ```
   */
  select<O>(query: (db: Kysely<DB>) => SelectLike<O>, options?: ScatterOptions): Promise<ScatterResult<O>>
}

/** What scatter-gather needs from the router. */
export interface ScatterRouter<DB> {
  readonly shards: ReadonlyMap<string, Kysely<DB>>
  readonly deadlineMs: number
  readonly compareText: (a: string, b: string) => number
  readonly obs: Observability
  assertOpen(): void
}

/**
 * AVG's final division. Floats divide in JavaScript; integers and numerics divide in Postgres so
 * the result has exactly the digits `avg()` would print (numeric division picks its own scale).
 */
async function divideExactly<DB>(
  db: Kysely<DB> | undefined,
  pairs: Parameters<Divide>[0],
): Promise<unknown[]> {
  const exact = pairs.filter(([sum, count]) => sum !== null && typeof sum !== 'number' && count !== null)
  const divided: unknown[] = []
  if (exact.length > 0 && db) {
    const { rows } = await sql<{ v: unknown }>`select (s::numeric / nullif(c::numeric, 0)) as v
      from unnest(${exact.map(([sum]) => String(sum))}::text[], ${exact.map(([, count]) => String(count))}::text[])
      with ordinality as u(s, c, n) order by n`.execute(db)
    divided.push(...rows.map((row) => row.v))
  }
  return pairs.map(([sum, count]) => {
    if (sum === null || count === null || Number(count) === 0) return null
    return typeof sum === 'number' ? sum / Number(count) : divided.shift()
  })
}

export function createAllShards<DB>(router: ScatterRouter<DB>): AllShards<DB> {
  return {
    async each<R>(query: (db: Kysely<DB>, shard: string) => Promise<R[]>, options: ScatterOptions = {}) {
      router.assertOpen()
      const { answers, missing } = await fanOut(
        router.shards,
        query,
        deadline('deadlineMs', options.deadlineMs, router.deadlineMs),
        options.allowPartial ?? false,
      )
      return {
        rows: answers.flatMap((answer) => answer.value),
        complete: missing.length === 0,
        missingShards: missing,
      }
    },

    async select<O>(query: (db: Kysely<DB>) => SelectLike<O>, options: ScatterOptions = {}) {
      router.assertOpen()
      const started = Date.now()
      const [first] = router.shards.values()
      const node = query(first as Kysely<DB>).toOperationNode()
      if (node.kind !== 'SelectQueryNode')
        throw new UnmergeableQueryError(`only SELECT is merged, got ${node.kind}`)
      const plan = planSelect(node as SelectQueryNode)
      const { answers, missing } = await fanOut(
        router.shards,
        async (db) => {
          // Each shard's own executor compiles and runs it (its plugins, its replicas).
          const executor = db.getExecutor()
          const queryId = createQueryId()
          const compiled = executor.compileQuery(executor.transformQuery(plan.shardNode, queryId), queryId)
          return (await executor.executeQuery<Record<string, unknown>>(compiled)).rows
        },
        deadline('deadlineMs', options.deadlineMs, router.deadlineMs),
        options.allowPartial ?? false,
      )
      const divider = answers[0] ? router.shards.get(answers[0].shard) : undefined
      const rows = await mergeShardRows(
        plan,
        answers.map((answer) => answer.value),
        router.compareText,
        (pairs) => divideExactly(divider, pairs),
      )
      router.obs.observe('sharding_scatter_ms', Date.now() - started)
      return { rows: rows as O[], complete: missing.length === 0, missingShards: missing }
    },
  }
}
