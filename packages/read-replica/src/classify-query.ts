import type { OperationNode, RootOperationNode } from 'kysely'

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
  /** a select calling a function known to write (nextval, setval, advisory locks, …) */
  | 'volatile-function'
  /** SELECT … FOR UPDATE / FOR SHARE */
  | 'locking'
  /** schema changes: create / alter / drop / refresh … */
  | 'ddl'
  /** raw `sql` not marked read-only */
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
  readonly write: boolean
  readonly reason: RouteReason
}

const WRITE_QUERY_KINDS = new Set(['InsertQueryNode', 'UpdateQueryNode', 'DeleteQueryNode', 'MergeQueryNode'])
const LOCKING_MODIFIERS = new Set(['ForUpdate', 'ForNoKeyUpdate', 'ForShare', 'ForKeyShare'])
// Functions that write, take locks or consume sequence values: a replica would reject them or,
// worse for advisory locks, take a lock nobody else sees.
const WRITING_FUNCTION =
  /\b(nextval|setval|pg_advisory_(?:xact_)?lock(?:_shared)?|pg_try_advisory_(?:xact_)?lock(?:_shared)?|pg_notify|lo_create|lo_import|lo_unlink|txid_current|pg_current_xact_id)\s*\(/i

const READ: QueryClass = { write: false, reason: 'read' }

/**
 * Decides from Kysely's operation-node tree whether a query must run on the primary.
 * `rawIsRead` is true under `db.replica()`, where raw SQL has been declared read-only.
 */
export function classifyQuery(node: RootOperationNode, rawIsRead: boolean): QueryClass {
  if (node.kind === 'SelectQueryNode') return classifySelectTree(node, rawIsRead)
  if (WRITE_QUERY_KINDS.has(node.kind)) return { write: true, reason: 'write' }
  if (node.kind === 'RawNode') return rawIsRead ? READ : { write: true, reason: 'raw-sql' }
  return { write: true, reason: 'ddl' }
}

function classifySelectTree(root: OperationNode, rawIsRead: boolean): QueryClass {
  // Iterative walk over every nested node: subqueries, CTEs, joins, expressions.
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const value = stack.pop()
    if (value === null || typeof value !== 'object') continue
    if (Array.isArray(value)) {
      for (const item of value) stack.push(item)
      continue
    }
    const node = value as { kind?: unknown } & Record<string, unknown>
    const kind = node.kind
    if (typeof kind === 'string') {
      if (WRITE_QUERY_KINDS.has(kind)) return { write: true, reason: 'write-cte' }
      if (kind === 'SelectModifierNode' && LOCKING_MODIFIERS.has(String(node.modifier))) {
        return { write: true, reason: 'locking' }
      }
      if (kind === 'FunctionNode' && WRITING_FUNCTION.test(`${String(node.func)}(`)) {
        return { write: true, reason: 'volatile-function' }
      }
      if (kind === 'RawNode' && !rawIsRead) {
        const reason = writingRawFragmentReason(node.sqlFragments)
        if (reason) return { write: true, reason }
      }
    }
    for (const key in node) {
      if (key === 'kind') continue
      const child = node[key]
      if (child !== null && typeof child === 'object') stack.push(child)
    }
  }
  return READ
}

// Raw fragments embedded in a select builder (`sql\`nextval('s')\``) are read unless they call a
// writing function or lock rows.
function writingRawFragmentReason(fragments: unknown): RouteReason | undefined {
  if (!Array.isArray(fragments)) return undefined
  const text = fragments.join(' ')
  if (WRITING_FUNCTION.test(text)) return 'volatile-function'
  if (/\bfor\s+(?:no\s+key\s+)?(?:update|share|key\s+share)\b/i.test(text)) return 'locking'
  return undefined
}
