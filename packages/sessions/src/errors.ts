import { ScaleError, type ScaleErrorOptions } from '@scale/observability'

/** Every `code` a {@link SessionError} can carry: stable, safe to switch on. */
export type SessionErrorCode =
  | 'E_SESSIONS_INVALID_OPTIONS'
  | 'E_SESSIONS_CLOSED'
  | 'E_SESSION_STORE_UNAVAILABLE'
  | 'E_SESSION_DATA_INVALID'
  | 'E_SESSION_DATA_NOT_SERIALIZABLE'
  | 'E_SESSION_STATE'
  | 'E_SESSION_HEADERS_SENT'
  | 'E_SESSION_CSRF'
  | 'E_SESSION_DATA_UNREADABLE'

/** Base class of every error this package throws; `code` is stable and safe to switch on. */
export class SessionError extends ScaleError<SessionErrorCode> {
  /** HTTP status an adapter answers with when this error ends a request. */
  readonly statusCode: number

  constructor(
    code: SessionErrorCode,
    message: string,
    options: ScaleErrorOptions & { statusCode?: number } = {},
  ) {
    super('@scale/sessions', code, message, options)
    this.statusCode = options.statusCode ?? 500
  }
}

/**
 * The options passed to `createSessions` cannot work (short secret, timeouts out of range, ...);
 * `context.option` names the option. Thrown by `createSessions`, never at the first request.
 */
export class SessionsOptionsError extends SessionError {
  constructor(option: string, message: string, context: Record<string, unknown> = {}) {
    super('E_SESSIONS_INVALID_OPTIONS', message, { context: { option, ...context } })
  }
}

/**
 * @deprecated renamed {@link SessionsOptionsError} (code `E_SESSIONS_INVALID_OPTIONS`); this
 * alias goes in the next minor version.
 */
export const SessionConfigError = SessionsOptionsError
/** @deprecated renamed {@link SessionsOptionsError}. */
export type SessionConfigError = SessionsOptionsError

/** A method was called after `sessions.close()`; `context.method` names it. */
export class SessionsClosedError extends SessionError {
  constructor(method: string) {
    super(
      'E_SESSIONS_CLOSED',
      `sessions.${method}() was called after sessions.close(). Create a new instance with createSessions() if the app keeps serving.`,
      { statusCode: 503, context: { method } },
    )
  }
}

/**
 * Redis did not answer in time or refused the command. The request cannot be authenticated, so
 * the adapters answer 503 (fail closed) instead of guessing; retry once Redis is back.
 */
export class SessionStoreUnavailableError extends SessionError {
  constructor(operation: string, cause: unknown, context: Record<string, unknown> = {}) {
    const reason = cause instanceof Error ? cause.message : String(cause)
    super(
      'E_SESSION_STORE_UNAVAILABLE',
      `Redis is unavailable during "${operation}" (${reason}); the session could not be read or saved. ` +
        'The request was refused (503) rather than served as anonymous; it succeeds again once Redis answers.',
      { cause, statusCode: 503, context: { operation, ...context } },
    )
  }
}

/** A value given to `session.set()` failed the field's schema; nothing was written. */
export class SessionDataInvalidError extends SessionError {
  readonly issues: readonly { message: string }[]

  constructor(field: string, issues: readonly { message: string }[]) {
    super(
      'E_SESSION_DATA_INVALID',
      `Session field "${field}" failed its schema: ${issues.map((issue) => issue.message).join('; ')}. ` +
        'Fix the value before calling session.set(); nothing was stored.',
      { context: { field } },
    )
    this.issues = issues
  }
}

/** A value cannot be stored as JSON (a BigInt, a cycle, `undefined`, a function). */
export class SessionDataNotSerializableError extends SessionError {
  constructor(field: string, cause: unknown) {
    super(
      'E_SESSION_DATA_NOT_SERIALIZABLE',
      `Session field "${field}" cannot be stored: its value is not JSON-serializable. ` +
        'Store plain data (strings, numbers, booleans, null, arrays, objects); use session.delete() to remove a field.',
      { cause, context: { field } },
    )
  }
}

/** The session was used in a way its lifecycle does not allow (e.g. changed after it was committed). */
export class SessionStateError extends SessionError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('E_SESSION_STATE', message, { context })
  }
}

/**
 * The response's headers were already on their way when the session needed a new cookie (a
 * login, a `regenerate` or a first write after `res.write()`/`res.writeHead()`): the client
 * cannot receive it, so the new session was not stored. Reported to `onError`; the response is
 * left as the app sent it. Change the session before the first byte of the response.
 */
export class SessionHeadersSentError extends SessionError {
  constructor(action: string) {
    super(
      'E_SESSION_HEADERS_SENT',
      `The session needed a new cookie (${action}) after the response's headers were sent, so the client cannot receive it; the new session was not stored. ` +
        'Call regenerate() and change the session before writeHead(), write(), flushHeaders() or piping a stream.',
      { context: { action } },
    )
  }
}

/** A state-changing request came without a valid CSRF token for its session (403). */
export class SessionCsrfError extends SessionError {
  constructor(reason: string) {
    super(
      'E_SESSION_CSRF',
      `CSRF check failed: ${reason}. Send the token from csrfToken(session) in the "x-csrf-token" header (or the "_csrf" form field).`,
      { statusCode: 403, context: { reason } },
    )
  }
}

/**
 * A stored field could not be decrypted (encryption at rest): written with a key that is no
 * longer configured, tampered with, or copied from another session. Reported to `onError`; the
 * field reads as absent.
 */
export class SessionDataUnreadableError extends SessionError {
  constructor(field: string, reason: string, cause?: unknown) {
    super(
      'E_SESSION_DATA_UNREADABLE',
      `Session field "${field}" could not be decrypted (${reason}); it reads as absent. Keep retired keys in encryption.keys until sessions written with them have expired.`,
      { cause, context: { field, reason } },
    )
  }
}
