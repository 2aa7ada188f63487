import { ScaleError, type ScaleErrorContext, type ScaleErrorOptions } from '@scale/observability'

/** Every `code` a `ReadReplicaError` can carry; stable across versions. */
export type ReadReplicaErrorCode =
  | 'E_REPLICA_INVALID_OPTIONS'
  | 'E_REPLICA_CLOSED'
  | 'E_REPLICA_NONE_AVAILABLE'
  | 'E_REPLICA_PRIMARY_UNREACHABLE'
  | 'E_REPLICA_PRIMARY_READ_ONLY'
  | 'E_REPLICA_PRIMARY_CONNECTION_LOST'
  | 'E_REPLICA_CONNECT_FAILED'
  | 'E_REPLICA_QUERY_TIMEOUT'
  | 'E_REPLICA_TOKEN_MALFORMED'
  | 'E_REPLICA_TRANSACTION_ROLLED_BACK'
  | 'E_REPLICA_WRITES_PREVENTED'
  | 'E_REPLICA_STREAM_UNAVAILABLE'
  | 'E_REPLICA_INVALID_ARGUMENT'
  | 'E_REPLICA_FOREIGN_CONNECTION'

/** What an error is about (node, option, method, …), to act on without parsing the message. */
export type ReadReplicaErrorContext = ScaleErrorContext

/**
 * Base class of every error thrown by `@scale/read-replica`: `code` says what happened,
 * `context` what it is about, `cause` the driver's or server's own error when there is one.
 */
export class ReadReplicaError extends ScaleError<ReadReplicaErrorCode> {
  constructor(code: ReadReplicaErrorCode, message: string, options: ScaleErrorOptions = {}) {
    super('@scale/read-replica', code, message, options)
  }
}

/**
 * Thrown by the factory (and by `addReplica` / `setReplicas`) when an option is missing, of the
 * wrong type or out of range; `context.option` names it.
 */
export class ReadReplicaOptionsError extends ReadReplicaError {
  constructor(message: string, context: ReadReplicaErrorContext = {}) {
    super('E_REPLICA_INVALID_OPTIONS', message, { context })
  }
}

/** @deprecated renamed `ReadReplicaOptionsError` (the old name clashed with `@scale/jobs`); removed in the next minor. */
export const InvalidOptionsError = ReadReplicaOptionsError
/** @deprecated renamed `ReadReplicaOptionsError`; removed in the next minor. */
export type InvalidOptionsError = ReadReplicaOptionsError

/** A call after `db.close()` (or `db.destroy()`); `context.method` names the call. */
export class ReadReplicaClosedError extends ReadReplicaError {
  constructor(method: string) {
    super(
      'E_REPLICA_CLOSED',
      `${method}() was called after close(): the replicated Kysely instance is closed and its pools ended; create a new one`,
      { context: { method } },
    )
  }
}

/** @deprecated renamed `ReadReplicaClosedError`; removed in the next minor. */
export const RouterClosedError = ReadReplicaClosedError
/** @deprecated renamed `ReadReplicaClosedError`; removed in the next minor. */
export type RouterClosedError = ReadReplicaClosedError

/**
 * Every replica is excluded (down, lagging or promoted) and `whenNoReplica` is `'error'`.
 * With the default `'primary'` the read goes to the primary instead and this is never thrown.
 */
export class NoReplicaAvailableError extends ReadReplicaError {
  constructor(context: ReadReplicaErrorContext, cause?: unknown) {
    super(
      'E_REPLICA_NONE_AVAILABLE',
      'no healthy replica can serve this read (all are excluded); retry later, use db.primary(), or set whenNoReplica: "primary"',
      { context, cause },
    )
  }
}

/** No configured primary host could be reached (or none of them is out of recovery). Nothing was written. */
export class PrimaryUnreachableError extends ReadReplicaError {
  constructor(context: ReadReplicaErrorContext, cause?: unknown) {
    super(
      'E_REPLICA_PRIMARY_UNREACHABLE',
      `the primary (${String(context.node ?? 'unknown')}) could not be reached and no other configured primary host accepts writes; the query was not run, retry once a primary is back`,
      { context, cause },
    )
  }
}

/**
 * The node believed to be the primary refused a write because it is read-only (in recovery:
 * demoted, or a replica listed as a primary host). The server rejected the statement, so nothing
 * was written; the router re-detects the primary.
 */
export class PrimaryReadOnlyError extends ReadReplicaError {
  constructor(context: ReadReplicaErrorContext, cause?: unknown) {
    super(
      'E_REPLICA_PRIMARY_READ_ONLY',
      `the node used as primary (${String(context.node ?? 'unknown')}) is read-only and rejected the write; nothing was written. The primary is being re-detected, retry the write`,
      { context, cause },
    )
  }
}

/**
 * A consistency token could not be parsed or its signature did not match. Only thrown by the
 * strict `router.parseToken()`; routing never throws it: a bad token sends reads to the primary.
 */
export class MalformedTokenError extends ReadReplicaError {
  constructor(reason: string, cause?: unknown) {
    super(
      'E_REPLICA_TOKEN_MALFORMED',
      `consistency token rejected: ${reason}; reads of this context go to the primary`,
      {
        context: { reason },
        cause,
      },
    )
  }
}

/**
 * A statement on the primary did not finish within `queryTimeoutMs` (a hung or overloaded
 * primary). Its connection was closed, which makes PostgreSQL roll back an open transaction; a
 * single autocommit write may or may not have committed (`context.write`), so the context's
 * reads go to the primary until it writes again.
 */
export class QueryTimeoutError extends ReadReplicaError {
  constructor(context: ReadReplicaErrorContext, cause?: unknown) {
    super(
      'E_REPLICA_QUERY_TIMEOUT',
      `a statement on ${String(context.node ?? 'the primary')} did not finish within ${String(context.timeoutMs)} ms (queryTimeoutMs); its connection was closed.${context.write ? ' The write may or may not have committed: check before retrying.' : ' Retry it, or raise queryTimeoutMs for long statements.'}`,
      { context, cause },
    )
  }
}

/**
 * The connection to the primary broke while a statement ran (server shut down, crashed or the
 * network failed). A write may or may not have committed (`context.write`); the primary is
 * re-detected and the context's reads go to the primary until it writes again.
 */
export class PrimaryConnectionLostError extends ReadReplicaError {
  constructor(context: ReadReplicaErrorContext, cause?: unknown) {
    super(
      'E_REPLICA_PRIMARY_CONNECTION_LOST',
      `the connection to ${String(context.node ?? 'the primary')} was lost while the statement ran.${context.write ? ' The write may or may not have committed: check before retrying.' : ' Nothing was written; retry it.'}`,
      { context, cause },
    )
  }
}

/** COMMIT completed as ROLLBACK: an earlier statement's error had aborted the transaction; nothing was committed. */
export class TransactionRolledBackError extends ReadReplicaError {
  constructor(context: ReadReplicaErrorContext) {
    super(
      'E_REPLICA_TRANSACTION_ROLLED_BACK',
      'the transaction was rolled back at COMMIT because an earlier statement failed; nothing was committed',
      { context },
    )
  }
}

/**
 * A query that is not provably read-only ran under `db.replica({ preventWrites: true })` or
 * `db.router.preventWrites()`; it was refused, nothing was sent. `context.reason` says why it
 * counts as a write (`write`, `volatile-function`, `raw-sql`, …): declare a read-only function
 * with the `readOnlyFunctions` option.
 */
export class WritesPreventedError extends ReadReplicaError {
  constructor(context: ReadReplicaErrorContext) {
    super(
      'E_REPLICA_WRITES_PREVENTED',
      `writes are prevented here and this query is not provably read-only (${String(context.reason)}); it was not run`,
      { context },
    )
  }
}

/**
 * No connection could be had from a node's pool (refused, wrong database, bad password, pool
 * timeout); nothing was sent. Reads move on to another node; on the primary it ends as
 * `PrimaryUnreachableError` with this as its `cause`.
 */
export class ConnectFailedError extends ReadReplicaError {
  constructor(node: string, cause: unknown) {
    super('E_REPLICA_CONNECT_FAILED', `could not get a connection to ${node}; nothing was sent`, {
      context: { node },
      cause,
    })
  }
}

/** `.stream()` was called but no `cursor` option (pg-cursor's `Cursor` class) was given. */
export class StreamUnavailableError extends ReadReplicaError {
  constructor() {
    super(
      'E_REPLICA_STREAM_UNAVAILABLE',
      ".stream() needs the cursor option: createReplicatedKysely({ cursor: Cursor, … }) with pg-cursor's Cursor class",
      { context: { option: 'cursor' } },
    )
  }
}
