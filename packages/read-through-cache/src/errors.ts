import { ScaleError } from '@scale/observability'

/** Stable machine-readable codes of every error this package throws. */
export type CacheErrorCode =
  | 'E_CACHE_INVALID_OPTIONS'
  | 'E_CACHE_INVALID_KEY'
  | 'E_CACHE_CLOSED'
  | 'E_CACHE_UNAVAILABLE'
  | 'E_CACHE_TIMEOUT'
  | 'E_CACHE_SERIALIZATION'
  | 'E_CACHE_BATCH_RESULT'
  | 'E_CACHE_LOADER_TIMEOUT'
  | 'E_CACHE_REMOTE_LOAD_FAILED'
  | 'E_CACHE_LOADER_FAILED'

/** Base class of every error thrown by `@scale/read-through-cache`. */
export class ReadThroughCacheError extends ScaleError<CacheErrorCode> {
  constructor(
    code: CacheErrorCode,
    message: string,
    context: Record<string, unknown> = {},
    options: { cause?: unknown } = {},
  ) {
    super('@scale/read-through-cache', code, message, { ...options, context })
  }
}

/** An option passed to `createReadThroughCache` or to a call is out of range or of the wrong type. */
export class CacheOptionsError extends ReadThroughCacheError {
  constructor(option: string, message: string) {
    super('E_CACHE_INVALID_OPTIONS', `invalid option "${option}": ${message}`, { option })
  }
}

/** A key (or tag) is not a non-empty string. */
export class CacheKeyError extends ReadThroughCacheError {
  constructor(what: 'key' | 'tag', value: unknown) {
    super(
      'E_CACHE_INVALID_KEY',
      `${what} must be a non-empty string, got ${typeof value === 'string' ? '""' : typeof value}`,
      { what, value },
    )
  }
}

/** A method was called after `close()`. */
export class CacheClosedError extends ReadThroughCacheError {
  constructor(method: string) {
    super('E_CACHE_CLOSED', `${method}() was called after close(); create a new cache instead`, { method })
  }
}

/** A Redis command did not answer within `commandTimeoutMs`. */
export class CacheTimeoutError extends ReadThroughCacheError {
  constructor(command: string, timeoutMs: number) {
    super(
      'E_CACHE_TIMEOUT',
      `Redis did not answer ${command} within ${timeoutMs} ms; raise commandTimeoutMs if Redis is just slow`,
      { command, timeoutMs },
    )
  }
}

/**
 * A write (`set`, `delete`, `deleteByTag`) could not reach Redis: the command failed, timed out,
 * or the circuit breaker is open. Invalidations (`delete`, `deleteByTag`) are kept and replayed
 * when Redis answers again (see `context.queuedForReplay`).
 */
export class CacheUnavailableError extends ReadThroughCacheError {
  constructor(operation: string, context: Record<string, unknown>, cause?: unknown) {
    const queued = context.queuedForReplay === true
    super(
      'E_CACHE_UNAVAILABLE',
      `${operation} could not reach Redis${queued ? '; the invalidation is queued and will be replayed when Redis answers again' : ''}; check Redis health (stats().circuit shows the breaker state)`,
      { operation, ...context },
      { cause },
    )
  }
}

/** The serializer threw on a value (for example a `BigInt` or a cycle with the default JSON serializer). */
export class CacheSerializationError extends ReadThroughCacheError {
  constructor(key: string, cause: unknown) {
    super(
      'E_CACHE_SERIALIZATION',
      `the value of key "${key}" could not be serialized; pass a serializer that supports it`,
      { key },
      { cause },
    )
  }
}

/** A `getOrLoadMany` batch loader returned something that is neither an array of the right length nor a Map. */
export class CacheBatchResultError extends ReadThroughCacheError {
  constructor(expected: number, got: string) {
    super(
      'E_CACHE_BATCH_RESULT',
      `the batch loader must return a Map keyed by the requested keys or an array of ${expected} values in the same order, got ${got}`,
      { expected, got },
    )
  }
}

/**
 * A loader call did not settle within `loaderHardTimeoutMs` (and no stale value within the grace
 * period could be served instead). Its `signal` was aborted with this error and its slot freed.
 */
export class CacheLoaderTimeoutError extends ReadThroughCacheError {
  constructor(key: string, timeoutMs: number) {
    super(
      'E_CACHE_LOADER_TIMEOUT',
      `the loader of "${key}" did not settle within ${timeoutMs} ms (loaderHardTimeoutMs); pass its signal to your query, or raise loaderHardTimeoutMs if it is just slow`,
      { key, timeoutMs },
    )
  }
}

/**
 * This call waited for another process's load of the key (that process held the lease), and that
 * load failed. `context.error` has the original error's `name`, `message` and `code`; the callers
 * in the loading process got the original error itself.
 */
export class CacheRemoteLoadError extends ReadThroughCacheError {
  constructor(key: string, error: { name: string; message: string; code: string | undefined }) {
    super(
      'E_CACHE_REMOTE_LOAD_FAILED',
      `the process loading "${key}" (it held the lease this call waited on) failed: ${error.name}: ${error.message}; this call did not load again, so the source is not hit once per process`,
      { key, error },
    )
  }
}

/**
 * The loader called `ctx.fail(message?)`: the load failed like a throw (a stale value within the
 * grace period is served instead when there is one).
 */
export class CacheLoaderFailedError extends ReadThroughCacheError {
  constructor(key: string, message: string | undefined) {
    super('E_CACHE_LOADER_FAILED', message ?? `the loader of "${key}" failed (ctx.fail())`, { key })
  }
}
