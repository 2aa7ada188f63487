import { AliasNode, LimitNode, type SelectionNode, type SelectQueryNode, ValueNode } from 'kysely'
import { UnmergeableQueryError } from '../errors.js'
import {
  aliased,
  direction,
  HIDDEN_PREFIX,
  outputName,
  plainName,
  type RowsPlan,
  typeOf,
  unwrap,
} from './select-nodes.js'

/** A select without aggregates: rows merged by ORDER BY, LIMIT/OFFSET pushed down and re-applied. */
export function planRows(node: SelectQueryNode, limit: number | undefined, offset: number): RowsPlan {
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
