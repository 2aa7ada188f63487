/**
 * SQLSTATE raised by the guard trigger on a shard (shard-sql.ts) when a write touches a bucket the
 * shard has handed over (or is handing over) to another shard. The statement fails as a whole, so
 * nothing of it was written and it is safe to route again and retry.
 */
export const FENCED_SQLSTATE = 'SHF01'

/** True when an error (or one of its causes) is the guard trigger's refusal. */
export function isFencedError(error: unknown): boolean {
  let current: unknown = error
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    if ((current as { code?: unknown }).code === FENCED_SQLSTATE) return true
    current = (current as { cause?: unknown }).cause
  }
  return false
}
