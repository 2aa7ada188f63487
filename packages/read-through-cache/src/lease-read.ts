import { CacheUnavailableError } from './errors.js'

/**
 * What the get-or-lease script found: `fresh` a fresh value (no lease taken); `acquired` this
 * caller now holds the lease (a value, if any, is stale); `held` someone else holds it;
 * `outcome-left` the awaited holder finished without storing a value and left its outcome.
 */
export type LeaseStatus = 'fresh' | 'acquired' | 'held' | 'outcome-left'

/** The script's reply codes, by position (see GET_OR_LEASE). */
const LEASE_STATUSES: readonly LeaseStatus[] = ['fresh', 'acquired', 'held', 'outcome-left']

export interface LeaseRead {
  /** The stored envelope, if any. */
  text: string | undefined
  status: LeaseStatus
  /** With status `held`: the token of the lease holder. */
  holder: string | undefined
  /** With status `outcome-left`: what the awaited holder left (see `releaseWithOutcome`). */
  outcome: string | undefined
}

/** Decodes one call of the get-or-lease script's reply: its four values from `at` on. */
export function toLeaseRead(reply: readonly unknown[], at: number): LeaseRead {
  const text = reply[at] as string
  const status = LEASE_STATUSES[reply[at + 1] as number]
  // Only a foreign script under our SHA could answer otherwise: treat it as a failed command.
  if (status === undefined)
    throw new CacheUnavailableError('getOrLease', { reason: 'error', reply: reply[at + 1] })
  const holder = reply[at + 2] as string
  const outcome = reply[at + 3] as string
  return {
    text: text === '' ? undefined : text,
    status,
    holder: holder === '' ? undefined : holder,
    outcome: outcome === '' ? undefined : outcome,
  }
}
