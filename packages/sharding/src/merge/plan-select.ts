import type { SelectQueryNode } from 'kysely'
import { planGroups } from './plan-groups.js'
import { planRows } from './plan-rows.js'
import { checkShape, find, literal, type MergePlan } from './select-nodes.js'

// Reads a select's operation-node tree and splits it into the query each shard runs and the plan
// that merges the shards' rows into what one database would answer. Everything it does not know
// how to merge exactly is refused (UnmergeableQueryError), never answered approximately.

export type {
  AggregateKind,
  AggregatePart,
  Condition,
  GroupsPlan,
  MergePlan,
  Operand,
  RowsPlan,
  SortKey,
} from './select-nodes.js'
export { HIDDEN_PREFIX } from './select-nodes.js'

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
