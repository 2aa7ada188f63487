import type { DeadLetterFilter } from './dead-letter-options.js'
import type { DeadLetterEntry } from './dead-letter-store.js'

export function toMillis(value: Date | number): number {
  return value instanceof Date ? value.getTime() : value
}

/** Whether `entry` passes every condition `filter` sets (no filter: every entry). */
export function matchesFilter(entry: DeadLetterEntry, filter: DeadLetterFilter | undefined): boolean {
  if (!filter) return true
  if (filter.ids && !filter.ids.includes(entry.id)) return false
  if (filter.name !== undefined && entry.name !== filter.name) return false
  if (filter.errorCode !== undefined && entry.errorCode !== filter.errorCode) return false
  if (filter.reason !== undefined) {
    const ok =
      typeof filter.reason === 'string'
        ? entry.reason.includes(filter.reason)
        : filter.reason.test(entry.reason)
    if (!ok) return false
  }
  if (filter.since !== undefined && entry.failedAt < toMillis(filter.since)) return false
  if (filter.until !== undefined && entry.failedAt >= toMillis(filter.until)) return false
  if (filter.where && !filter.where(entry)) return false
  return true
}
