import {
  AggregateFunctionNode,
  AliasNode,
  type OperationNode,
  type SelectionNode,
  type SelectQueryNode,
  ValueNode,
} from 'kysely'
import { UnmergeableQueryError } from '../errors.js'
import {
  type AggregateKind,
  type AggregatePart,
  aliased,
  type Condition,
  direction,
  find,
  type GroupsPlan,
  HIDDEN_PREFIX,
  MERGEABLE,
  OPERATORS,
  type Operand,
  outputName,
  plainName,
  typeOf,
  unwrap,
} from './select-nodes.js'

/**
 * A select with aggregates or GROUP BY: shards return partial aggregates per group (AVG as SUM
 * and COUNT); HAVING, ORDER BY and LIMIT/OFFSET apply to the merged groups.
 */
export function planGroups(node: SelectQueryNode, limit: number | undefined, offset: number): GroupsPlan {
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
