import type {
  AggregatePart,
  Condition,
  GroupsPlan,
  MergePlan,
  Operand,
  RowsPlan,
  SortKey,
} from './plan-select.js'
import { HIDDEN_PREFIX } from './plan-select.js'
import { addValues, compareTyped, groupKeyOf } from './values.js'

type Row = Record<string, unknown>
type TextCompare = (a: string, b: string) => number

/** Exact `sum / count` for the AVG of each group (numeric division with Postgres' own scale rules). */
export type Divide = (pairs: ReadonlyArray<readonly [unknown, unknown]>) => Promise<unknown[]>

function comparator(sort: readonly SortKey[], compareText: TextCompare) {
  return (a: Row, b: Row): number => {
    for (const key of sort) {
      const left = a[key.field]
      const right = b[key.field]
      const leftNull = left === null || left === undefined
      const rightNull = right === null || right === undefined
      let order: number
      if (leftNull || rightNull) {
        if (leftNull && rightNull) continue
        order = leftNull === key.nullsFirst ? -1 : 1
        if (order !== 0) return order
        continue
      }
      order = compareTyped(String(a[key.typeField] ?? b[key.typeField]), left, right, compareText)
      if (order !== 0) return key.desc ? -order : order
    }
    return 0
  }
}

function page<T>(rows: T[], limit: number | undefined, offset: number): T[] {
  return rows.slice(offset, limit === undefined ? undefined : offset + limit)
}

function stripHidden(row: Row): Row {
  const out: Row = {}
  for (const [key, value] of Object.entries(row)) if (!key.startsWith(HIDDEN_PREFIX)) out[key] = value
  return out
}

function mergeRows(plan: RowsPlan, parts: Row[][], compareText: TextCompare): Row[] {
  const all = parts.flat()
  // Array.prototype.sort is stable, so ties keep shard order (SQL leaves ties unordered anyway).
  if (plan.sort.length > 0) all.sort(comparator(plan.sort, compareText))
  return page(all, plan.limit, plan.offset).map(stripHidden)
}

function combine(part: AggregatePart, rows: Row[], compareText: TextCompare): unknown {
  if (part.kind === 'count' || part.kind === 'sum')
    return rows.reduce<unknown>((acc, row) => addValues(acc, row[part.column]), null)
  if (part.kind === 'min' || part.kind === 'max') {
    let best: unknown = null
    for (const row of rows) {
      const value = row[part.column]
      if (value === null || value === undefined) continue
      if (best === null) best = value
      else {
        const order = compareTyped(String(row[part.typeColumn as string]), value, best, compareText)
        if (part.kind === 'min' ? order < 0 : order > 0) best = value
      }
    }
    return best
  }
  return undefined // avg: divided afterwards, in one batch
}

function operandValue(operand: Operand, row: Row): unknown {
  return 'value' in operand ? operand.value : row[operand.field]
}

function holds(condition: Condition, row: Row, compareText: TextCompare): boolean {
  if (condition.kind !== 'compare') {
    const left = holds(condition.left, row, compareText)
    return condition.kind === 'and'
      ? left && holds(condition.right, row, compareText)
      : left || holds(condition.right, row, compareText)
  }
  const left = operandValue(condition.left, row)
  const right = operandValue(condition.right, row)
  if (left === null || left === undefined || right === null || right === undefined) return false // SQL's unknown
  const typed =
    'field' in condition.left ? condition.left : 'field' in condition.right ? condition.right : undefined
  const type = typed ? String(row[typed.typeField]) : typeof left === 'number' ? 'numeric' : 'text'
  const order = compareTyped(type, left, right, compareText)
  switch (condition.operator) {
    case '=':
    case '==':
      return order === 0
    case '!=':
    case '<>':
      return order !== 0
    case '<':
      return order < 0
    case '<=':
      return order <= 0
    case '>':
      return order > 0
    default:
      return order >= 0
  }
}

async function mergeGroups(
  plan: GroupsPlan,
  parts: Row[][],
  compareText: TextCompare,
  divide: Divide,
): Promise<Row[]> {
  const groups = new Map<string, Row[]>()
  for (const row of parts.flat()) {
    const key = groupKeyOf(plan.groupColumns.map((column) => row[column]))
    const list = groups.get(key)
    if (list) list.push(row)
    else groups.set(key, [row])
  }
  const aggregates = [
    ...plan.outputs.flatMap((output) => (output.aggregate ? [output.aggregate] : [])),
    ...plan.extraAggregates,
  ]
  const averages: Array<{ row: Row; field: string; pair: readonly [unknown, unknown] }> = []
  const merged = [...groups.values()].map((rows) => {
    const first = rows[0] as Row
    const row: Row = { ...first }
    for (const part of aggregates) {
      if (part.kind === 'avg') {
        const sum = rows.reduce<unknown>((acc, r) => addValues(acc, r[part.column]), null)
        const count = rows.reduce<unknown>((acc, r) => addValues(acc, r[part.countColumn as string]), null)
        averages.push({ row, field: part.field, pair: [sum, count] })
      } else {
        row[part.field] = combine(part, rows, compareText)
      }
    }
    return row
  })
  if (averages.length > 0) {
    const values = await divide(averages.map((entry) => entry.pair))
    averages.forEach((entry, index) => {
      entry.row[entry.field] = values[index] ?? null
    })
  }
  const kept = plan.having
    ? merged.filter((row) => holds(plan.having as Condition, row, compareText))
    : merged
  if (plan.sort.length > 0) kept.sort(comparator(plan.sort, compareText))
  return page(kept, plan.limit, plan.offset).map((row) => {
    const out: Row = {}
    for (const output of plan.outputs) out[output.name] = row[output.name]
    return out
  })
}

/** Merges the shards' rows as the plan says. */
export function mergeShardRows(
  plan: MergePlan,
  parts: Row[][],
  compareText: TextCompare,
  divide: Divide,
): Promise<Row[]> {
  return plan.mode === 'rows'
    ? Promise.resolve(mergeRows(plan, parts, compareText))
    : mergeGroups(plan, parts, compareText, divide)
}
