/** What an error is about (key, option, node, method, …): enough to act on it without parsing the message. */
export type ScaleErrorContext = Readonly<Record<string, unknown>>

export interface ScaleErrorOptions {
  /** The driver's, server's or user's own error, when there is one (standard `Error.cause`). */
  cause?: unknown
  context?: ScaleErrorContext
}

/**
 * The one shape of every error a `@scale/*` package throws (root CONTRIBUTING): a stable `code`
 * (each package narrows it to its own string-literal union), `context`, the standard `cause`, a
 * `name` that is the concrete class's, and a message that starts `[@scale/<package>]`. Each
 * package's own base class (`JobsError`, `ShardingError`, …) extends this one and fixes the
 * package name, so `instanceof ScaleError` also catches any of them.
 *
 * @example
 * ```ts fragment
 * export class ShardingError extends ScaleError<ShardingErrorCode> {
 *   constructor(code: ShardingErrorCode, message: string, options: ScaleErrorOptions = {}) {
 *     super('@scale/sharding', code, message, options)
 *   }
 * }
 * ```
 */
export class ScaleError<Code extends string = string> extends Error {
  readonly code: Code
  readonly context: ScaleErrorContext

  constructor(packageName: `@scale/${string}`, code: Code, message: string, options: ScaleErrorOptions = {}) {
    super(`[${packageName}] ${message}`, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.context = Object.freeze({ ...options.context })
  }
}
