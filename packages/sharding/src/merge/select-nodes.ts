import {
  AliasNode,
  IdentifierNode,
  type OperationNode,
  type OrderByItemNode,
  SelectionNode,
  type SelectQueryNode,
  sql,
  ValueNode,
} from 'kysely'
import { UnmergeableQueryError } from '../errors.js'

// Shared by the two planners: the plan types and small readers/builders of Kysely's nodes.

export const HIDDEN_PREFIX = '__sg_'

export interface SortKey {
  readonly field: string
  readonly typeField: string
  readonly desc: boolean
  readonly nullsFirst: boolean
}

export type AggregateKind = 'count' | 'sum' | 'min' | 'max' | 'avg'

export interface AggregatePart {
  readonly field: string
  readonly kind: AggregateKind
  /** The shard column: the partial value (count, sum, min, max) or, for avg, the partial sum. */
  readonly column: string
  /** avg: the partial count. */
  readonly countColumn?: string
  /** min/max: the value's type, to compare. */
  readonly typeColumn?: string
}

export type Operand = { readonly value: unknown } | { readonly field: string; readonly typeField: string }

export type Condition =
  | { readonly kind: 'and' | 'or'; readonly left: Condition; readonly right: Condition }
  | { readonly kind: 'compare'; readonly operator: string; readonly left: Operand; readonly right: Operand }

export interface RowsPlan {
  readonly mode: 'rows'
  readonly shardNode: SelectQueryNode
  readonly sort: readonly SortKey[]
  readonly limit: number | undefined
  readonly offset: number
}

export interface GroupsPlan {
  readonly mode: 'groups'
  readonly shardNode: SelectQueryNode
  readonly groupColumns: readonly string[]
  /** Output columns in order: carried from the group's first row, or merged aggregates. */
  readonly outputs: ReadonlyArray<{ readonly name: string; readonly aggregate?: AggregatePart }>
  /** Hidden aggregates only HAVING or ORDER BY use. */
  readonly extraAggregates: readonly AggregatePart[]
  readonly having: Condition | undefined
  readonly sort: readonly SortKey[]
  readonly limit: number | undefined
  readonly offset: number
}

export type MergePlan = RowsPlan | GroupsPlan

export const MERGEABLE = new Set<string>(['count', 'sum', 'min', 'max', 'avg'])
export const OPERATORS = new Set(['=', '==', '!=', '<>', '<', '<=', '>', '>='])

export function find(node: unknown, kinds: ReadonlySet<string>): string | undefined {
  if (!node || typeof node !== 'object') return undefined
  if (Array.isArray(node)) {
    for (const item of node) {
      const hit = find(item, kinds)
      if (hit) return hit
    }
    return undefined
  }
  const kind = (node as { kind?: string }).kind
  if (kind && kinds.has(kind)) return kind
  for (const value of Object.values(node)) {
    const hit = find(value, kinds)
    if (hit) return hit
  }
  return undefined
}

const source = (node: OperationNode) => ({ toOperationNode: () => node })

export function aliased(expression: OperationNode, alias: string): SelectionNode {
  return SelectionNode.create(AliasNode.create(expression, IdentifierNode.create(alias)))
}

export function typeOf(expression: OperationNode, alias: string): SelectionNode {
  return SelectionNode.create(sql`pg_typeof(${source(expression)})::text`.as(alias).toOperationNode())
}

export function literal(node: OperationNode | undefined, what: string): number | undefined {
  if (!node) return undefined
  const value = ValueNode.is(node) ? node.value : undefined
  const number = typeof value === 'bigint' ? Number(value) : value
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < 0)
    throw new UnmergeableQueryError(`${what} must be a literal non-negative integer`)
  return number
}

export function outputName(selection: OperationNode): string | undefined {
  if (AliasNode.is(selection) && IdentifierNode.is(selection.alias)) return selection.alias.name
  const column = (selection as { column?: { kind?: string; column?: { name?: string } } }).column
  if (selection.kind === 'ReferenceNode' && column?.kind === 'ColumnNode') return column.column?.name
  if (selection.kind === 'ColumnNode')
    return (selection as unknown as { column: { name: string } }).column.name
  return undefined
}

export function plainName(expression: OperationNode): string | undefined {
  const ref = expression as {
    kind: string
    table?: unknown
    column?: { kind?: string; column?: { name?: string } }
  }
  if (ref.kind === 'ReferenceNode' && !ref.table && ref.column?.kind === 'ColumnNode')
    return ref.column.column?.name
  return undefined
}

export function direction(item: OrderByItemNode): { desc: boolean; nullsFirst: boolean } {
  const raw = item.direction as { kind?: string; sqlFragments?: readonly string[] } | undefined
  const text =
    raw?.kind === 'RawNode' ? (raw.sqlFragments ?? []).join('').trim().toLowerCase() : raw ? '?' : 'asc'
  if (text !== 'asc' && text !== 'desc')
    throw new UnmergeableQueryError('ORDER BY direction must be asc or desc')
  if (item.collation) throw new UnmergeableQueryError('ORDER BY ... COLLATE is not merged')
  const desc = text === 'desc'
  // Postgres: NULLS LAST for ASC, NULLS FIRST for DESC unless said otherwise.
  return { desc, nullsFirst: item.nulls ? item.nulls === 'first' : desc }
}

/** `sql.ref('x')` is a raw node around a reference: look through it. */
export function unwrap(node: OperationNode): OperationNode {
  const raw = node as {
    kind: string
    sqlFragments?: readonly string[]
    parameters?: readonly OperationNode[]
  }
  if (
    raw.kind === 'RawNode' &&
    raw.parameters?.length === 1 &&
    raw.sqlFragments?.every((f) => f.trim() === '')
  )
    return unwrap(raw.parameters[0] as OperationNode)
  return node
}

/** Raw SQL is opaque: it may hide an aggregate, a window or a subquery, so it is not merged. */
export function refuseOpaque(nodes: readonly (OperationNode | undefined)[]): void {
  for (const node of nodes) {
    if (!node) continue
    const inner = unwrap(node)
    if (inner !== node) {
      refuseOpaque([inner])
      continue
    }
    if (node.kind === 'RawNode')
      throw new UnmergeableQueryError(
        'raw SQL in the select list, GROUP BY, HAVING or ORDER BY is opaque to the merge',
      )
    if (node.kind === 'SelectQueryNode')
      throw new UnmergeableQueryError('subqueries outside WHERE/FROM see one shard only')
    for (const value of Object.values(node)) {
      if (Array.isArray(value)) refuseOpaque(value.filter((v) => v && typeof v === 'object' && 'kind' in v))
      else if (value && typeof value === 'object' && 'kind' in value) refuseOpaque([value as OperationNode])
    }
  }
}

export function checkShape(node: SelectQueryNode): void {
  if (node.kind !== 'SelectQueryNode') throw new UnmergeableQueryError('only SELECT queries are merged')
  if (node.setOperations?.length) throw new UnmergeableQueryError('UNION / INTERSECT / EXCEPT across shards')
  if (node.distinctOn?.length) throw new UnmergeableQueryError('DISTINCT ON')
  if (node.frontModifiers?.length) throw new UnmergeableQueryError('DISTINCT (or another select modifier)')
  if (node.endModifiers?.length)
    throw new UnmergeableQueryError('FOR UPDATE / FOR SHARE (locks) across shards')
  if (node.fetch || node.top || node.explain) throw new UnmergeableQueryError('FETCH / TOP / EXPLAIN')
  if (!node.selections?.length) throw new UnmergeableQueryError('a select list is required')
  if (find([node.selections, node.orderBy, node.having], new Set(['OverNode'])))
    throw new UnmergeableQueryError('window functions (OVER) see only one shard')
  refuseOpaque([
    ...(node.selections ?? []),
    ...(node.groupBy?.items ?? []),
    node.having,
    ...(node.orderBy?.items ?? []).map((item) => item.orderBy),
  ])
}
