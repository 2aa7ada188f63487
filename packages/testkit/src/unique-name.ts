import { randomBytes } from 'node:crypto'

/**
 * `prefix` followed by 8 random hex digits: a queue name, key prefix or table name that no other
 * test (or engineer running tests on the same machine at the same time) uses. Lowercase hex only,
 * so the result is also a valid unquoted SQL identifier when `prefix` is one.
 *
 * @example
 * ```ts
 * uniqueName('emails-') // 'emails-3f9a01c2'
 * uniqueName('t') + ':' // a Redis key prefix, 't3f9a01c2:'
 * ```
 */
export function uniqueName(prefix = 't'): string {
  return `${prefix}${randomBytes(4).toString('hex')}`
}
