import {
  AggregateFunctionNode,
  AliasNode,
  IdentifierNode,
  LimitNode,
  type OperationNode,
  type OrderByItemNode,
  SelectionNode,
  type SelectQueryNode,
  sql,
  ValueNode,
} from 'kysely'
import { UnmergeableQueryError } from '../errors.js'

// Reads a select's operation-node tree and splits it into the query each shard runs and the plan
// that merges the shards' rows into what one database would answer. Everything it does not know
// how to merge exactly is refused (UnmergeableQueryError), never answered approximately.

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

const MERGEABLE = new Set<string>(['count', 'sum', 'min', 'max', 'avg'])
const OPERATORS = new Set(['=', '==', '!=', '<>', '<', '<=', '>', '>='])

function find(node: unknown, kinds: ReadonlySet<string>): string | undefined {
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

function aliased(expression: OperationNode, alias: string): SelectionNode {
  return SelectionNode.create(AliasNode.create(expression, IdentifierNode.create(alias)))
}

function typeOf(expression: OperationNode, alias: string): SelectionNode {
  return SelectionNode.create(sql`pg_typeof(${source(expression)})::text`.as(alias).toOperationNode())
}

function literal(node: OperationNode | undefined, what: string): number | undefined {
  if (!node) return undefined
  const value = ValueNode.is(node) ? node.value : undefined
  const number = typeof value === 'bigint' ? Number(value) : value
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < 0)
    throw new UnmergeableQueryError(`${what} must be a literal non-negative integer`)
  return number
}

function outputName(selection: OperationNode): string | undefined {
  if (AliasNode.is(selection) && IdentifierNode.is(selection.alias)) return selection.alias.name
  const column = (selection as { column?: { kind?: string; column?: { name?: string } } }).column
  if (selection.kind === 'ReferenceNode' && column?.kind === 'ColumnNode') return column.column?.name
  if (selection.kind === 'ColumnNode')
    return (selection as unknown as { column: { name: string } }).column.name
  return undefined
}

function plainName(expression: OperationNode): string | undefined {
  const ref = expression as {
    kind: string
    table?: unknown
    column?: { kind?: string; column?: { name?: string } }
  }
  if (ref.kind === 'ReferenceNode' && !ref.table && ref.column?.kind === 'ColumnNode')
    return ref.column.column?.name
  return undefined
}

function direction(item: OrderByItemNode): { desc: boolean; nullsFirst: boolean } {
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
function unwrap(node: OperationNode): OperationNode {
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
function refuseOpaque(nodes: readonly (OperationNode | undefined)[]): void {
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

function checkShape(node: SelectQueryNode): void {
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

/** Splits a select into the per-shard query and the merge plan; throws UnmergeableQueryError. */
export function planSelect(node: SelectQueryNode): MergePlan {
  checkShape(node)
  const aggregating =
    !!node.groupBy?.items.length ||
    node.selections?.some((s) => find(s, new Set(['AggregateFunctionNode'])) !== undefined)
  const limit = literal(node.limit?.limit, 'LIMIT')
  const offset = literal(node.offset?.offset, 'OFFSET') ?? 0
  return aggregating ? planGroups(node, limit, offset) : planRows(node, limit, offset)
}

function planRows(node: SelectQueryNode, limit: number | undefined, offset: number): RowsPlan {
  if (node.having) throw new UnmergeableQueryError('HAVING without aggregates')
  const outputs = new Set((node.selections ?? []).map((s) => outputName(s.selection)).filter(Boolean))
  const extra: SelectionNode[] = []
  const sort = (node.orderBy?.items ?? []).map((item, index) => {
    const alias = plainName(unwrap(item.orderBy))
    const selected =
      alias !== undefined && outputs.has(alias)
        ? (node.selections ?? []).find((s) => outputName(s.selection) === alias)
        : undefined
    const field = `${HIDDEN_PREFIX}o${index}`
    const typeField = `${HIDDEN_PREFIX}t${index}`
    // An expression not in the select list (or an alias of one) travels as a hidden column.
    const expression = selected && AliasNode.is(selected.selection) ? selected.selection.node : item.orderBy
    extra.push(aliased(expression, field), typeOf(expression, typeField))
    return { field, typeField, ...direction(item) }
  })
  const { limit: _limit, offset: _offset, ...rest } = node
  const shardNode: SelectQueryNode = {
    ...rest,
    selections: [...(node.selections ?? []), ...extra],
    // Each shard returns its first limit + offset rows; the merge re-applies both.
    ...(limit === undefined ? {} : { limit: LimitNode.create(ValueNode.createImmediate(limit + offset)) }),
  }
  return { mode: 'rows', shardNode, sort, limit, offset }
}

function planGroups(node: SelectQueryNode, limit: number | undefined, offset: number): GroupsPlan {
  const selections: SelectionNode[] = []
  let counter = 0
  const hidden = (tag: string) => `${HIDDEN_PREFIX}${tag}${counter++}`

  const aggregatePart = (aggregate: OperationNode, field: string): AggregatePart => {
    if (!AggregateFunctionNode.is(aggregate) || !MERGEABLE.has(aggregate.func))
      throw new UnmergeableQueryError(
        `only top-level count/sum/min/max/avg are merged, got ${aggregate.kind}`,
      )
    if (aggregate.distinct)
      throw new UnmergeableQueryError(`${aggregate.func}(DISTINCT ...) cannot be summed over shards`)
    if (aggregate.filter || aggregate.orderBy || aggregate.withinGroup || aggregate.over)
      throw new UnmergeableQueryError(`${aggregate.func} with FILTER / ORDER BY / WITHIN GROUP / OVER`)
    const kind = aggregate.func as AggregateKind
    if (kind === 'avg') {
      // AVG = total SUM / total COUNT, never an average of averages.
      const column = hidden('s')
      const countColumn = hidden('c')
      selections.push(
        aliased(AggregateFunctionNode.create('sum', aggregate.aggregated), column),
        aliased(AggregateFunctionNode.create('count', aggregate.aggregated), countColumn),
      )
      return { field, kind, column, countColumn }
    }
    const column = hidden('a')
    selections.push(aliased(aggregate, column))
    if (kind === 'min' || kind === 'max') {
      const typeColumn = hidden('t')
      selections.push(typeOf(aggregate, typeColumn))
      return { field, kind, column, typeColumn }
    }
    return { field, kind, column }
  }

  const groupExpressions = (node.groupBy?.items ?? []).map((item) => item.groupBy)
  const groupColumns = groupExpressions.map((expression) => {
    const column = hidden('g')
    selections.push(aliased(expression, column))
    return column
  })
  const groupTypes = new Map<string, string>()
  const groupKeyIndex = new Map(
    groupExpressions.map((expression, index) => [JSON.stringify(expression), index]),
  )

  const outputs = (node.selections ?? []).map((selection) => {
    const name = outputName(selection.selection)
    if (selection.selection.kind === 'SelectAllNode' || name === undefined)
      throw new UnmergeableQueryError('with aggregates, every selected column needs a name (use .as())')
    const expression = AliasNode.is(selection.selection) ? selection.selection.node : selection.selection
    if (find(expression, new Set(['AggregateFunctionNode']))) {
      return { name, aggregate: aggregatePart(expression, name), expression }
    }
    if (
      !groupKeyIndex.has(JSON.stringify(expression)) &&
      !groupKeyIndex.has(JSON.stringify(selection.selection))
    )
      throw new UnmergeableQueryError(`selected column "${name}" is neither aggregated nor in GROUP BY`)
    selections.push(selection)
    return { name, expression }
  })

  const extraAggregates: AggregatePart[] = []
  const typed = new Map<string, string>()
  const typeField = (field: string, expression: OperationNode) => {
    let column = typed.get(field)
    if (!column) {
      column = hidden('t')
      typed.set(field, column)
      selections.push(typeOf(expression, column))
    }
    return column
  }
  // An ORDER BY or HAVING term after the merge: an output, a GROUP BY expression or an aggregate.
  const resolve = (wrapped: OperationNode): { field: string; typeField: string } => {
    const expression = unwrap(wrapped)
    const alias = plainName(expression)
    const output = alias === undefined ? undefined : outputs.find((o) => o.name === alias)
    if (output) return { field: output.name, typeField: typeField(output.name, output.expression) }
    const group = groupKeyIndex.get(JSON.stringify(expression))
    if (group !== undefined) {
      const field = groupColumns[group] as string
      let type = groupTypes.get(field)
      if (!type) {
        type = typeField(field, expression)
        groupTypes.set(field, type)
      }
      return { field, typeField: type }
    }
    if (AggregateFunctionNode.is(expression)) {
      const field = hidden('h')
      extraAggregates.push(aggregatePart(expression, field))
      return { field, typeField: typeField(field, expression) }
    }
    throw new UnmergeableQueryError(
      'ORDER BY / HAVING may only use selected columns, GROUP BY expressions or aggregates',
    )
  }
  const operand = (expression: OperationNode): Operand =>
    ValueNode.is(expression) ? { value: expression.value } : resolve(expression)
  const condition = (expression: OperationNode): Condition => {
    const e = expression as { kind: string; [key: string]: unknown }
    if (e.kind === 'ParensNode') return condition(e.node as OperationNode)
    if (e.kind === 'AndNode' || e.kind === 'OrNode')
      return {
        kind: e.kind === 'AndNode' ? 'and' : 'or',
        left: condition(e.left as OperationNode),
        right: condition(e.right as OperationNode),
      }
    if (e.kind === 'BinaryOperationNode') {
      const operator = (e.operator as { operator?: string }).operator ?? ''
      if (!OPERATORS.has(operator)) throw new UnmergeableQueryError(`HAVING operator ${operator}`)
      return {
        kind: 'compare',
        operator,
        left: operand(e.leftOperand as OperationNode),
        right: operand(e.rightOperand as OperationNode),
      }
    }
    throw new UnmergeableQueryError(`HAVING with ${e.kind}; use comparisons joined by and/or`)
  }
  const having = node.having ? condition(node.having.having) : undefined
  const sort = (node.orderBy?.items ?? []).map((item) => ({ ...resolve(item.orderBy), ...direction(item) }))

  // HAVING, ORDER BY and LIMIT only mean something over the merged groups.
  const { having: _having, orderBy: _orderBy, limit: _limit, offset: _offset, ...rest } = node
  const shardNode: SelectQueryNode = { ...rest, selections }
  return {
    mode: 'groups',
    shardNode,
    groupColumns,
    outputs: outputs.map(({ name, aggregate }) => (aggregate ? { name, aggregate } : { name })),
    extraAggregates,
    having,
    sort,
    limit,
    offset,
  }
}
