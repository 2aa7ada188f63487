import { InvalidShardKeyError, ShardKeyMissingError } from './errors.js'

/** What a shard key may be: a non-empty string, a safe integer or a bigint. */
export type ShardKey = string | number | bigint

/**
 * The one text form of a key that both this package and the SQL functions on the shards hash.
 * A number and a bigint of the same value (and the string of its digits) are the same key, so a
 * `user_id` read back as a string from a `bigint` column routes where the number did; in SQL it
 * is `key::text`.
 */
export function canonicalKey(key: unknown, method = 'forKey'): string {
  if (key === undefined || key === null) throw new ShardKeyMissingError(method)
  if (typeof key === 'string') {
    if (key.length === 0) throw new InvalidShardKeyError('empty string', key)
    return key
  }
  if (typeof key === 'bigint') return key.toString()
  if (typeof key === 'number') {
    if (Number.isNaN(key)) throw new InvalidShardKeyError('NaN', key)
    if (!Number.isFinite(key)) throw new InvalidShardKeyError('not finite', key)
    if (!Number.isInteger(key)) throw new InvalidShardKeyError('not an integer', key)
    // Above 2^53 two different IDs can be the same double: route them as bigint instead.
    if (!Number.isSafeInteger(key)) throw new InvalidShardKeyError('not a safe integer, pass a bigint', key)
    return String(key)
  }
  throw new InvalidShardKeyError(`a ${typeof key}`, key)
}

/** The integer value of a canonical key, for the `% N` strategy; undefined for non-numeric text. */
export function integerOfKey(canonical: string): bigint | undefined {
  return /^-?\d+$/.test(canonical) ? BigInt(canonical) : undefined
}

/**
 * The key of an integer given as text (a form field, a CSV cell, a query string): `'042'`,
 * `' 42'` and `'+42'` all become `42n`, the value a `bigint` column stores, so they route where
 * `42` does. A string passed to `forKey()` as it is routes by its exact text (right for a `text`
 * key, where `'042'` and `'42'` are different keys), so parse integer keys from text with this.
 * Throws `InvalidShardKeyError` for text that is not an integer.
 */
export function integerShardKey(text: string): bigint {
  const trimmed = typeof text === 'string' ? text.trim() : ''
  if (!/^[+-]?\d+$/.test(trimmed)) throw new InvalidShardKeyError('not an integer', text)
  return BigInt(trimmed)
}
