import type { Lsn } from './lsn.js'
import type { PrimaryLsnHistory } from './primary-lsn-history.js'
import type { ReplicaState } from './replica-state.js'

// How far behind a replica is, estimated from when the primary was seen at which WAL position
// (PrimaryLsnHistory): lag in seconds that never counts idle time, and each replica's replay
// delay, which tells a read-your-writes wait that cannot succeed in its budget.

/** A replica was seen at replay position `lsn`: moves it forward and refines its replay delay. */
export function advanceReplay(replica: ReplicaState, lsn: Lsn | undefined, history: PrimaryLsnHistory): void {
  if (lsn === undefined) return
  const now = performance.now()
  const before = replica.replayLsn
  if (before === undefined || lsn > before) {
    // A primary position replayed since the last observation had not been replayed then: its
    // delay was at least (last observation - when the primary was seen there).
    const firstSeen = history.firstSeenBetween(before, lsn)
    if (before !== undefined && firstSeen !== undefined && replica.observedAt !== undefined) {
      const atLeast = Math.max(0, replica.observedAt - firstSeen)
      replica.replayDelayMs =
        replica.replayDelayMs === undefined ? atLeast : replica.replayDelayMs * 0.7 + atLeast * 0.3
    }
    replica.replayLsn = lsn
  }
  replica.observedAt = now
}

/**
 * True when waiting `budgetMs` for `lsn` is known to be futile: every candidate replica's
 * observed replay delay, minus how long ago the primary reached `lsn`, exceeds the budget. False
 * whenever something is unknown (then the read waits, as it always could).
 */
export function isFutileWait(
  candidates: readonly ReplicaState[],
  lsn: Lsn,
  budgetMs: number,
  skip: ReadonlySet<ReplicaState>,
  history: PrimaryLsnHistory,
): boolean {
  const age = history.ageAtMost(lsn, performance.now())
  if (age === undefined) return false
  let soonest = Number.POSITIVE_INFINITY
  for (const replica of candidates) {
    if (skip.has(replica)) continue
    if (replica.replayDelayMs === undefined) return false
    soonest = Math.min(soonest, replica.replayDelayMs - age)
  }
  return soonest > budgetMs
}

/** What the replica check reports about its own replay (see REPLICA_CHECK). */
export interface ReplayReport {
  caught_up: boolean | null
  since_replay: number | string | null
}

/**
 * Seconds during which the primary had WAL this replica has not replayed. Before the primary's
 * position is known, the server's own view: time since the last replayed commit, counted only
 * while received WAL waits to be replayed.
 */
export function lagSeconds(
  report: ReplayReport,
  replay: Lsn | undefined,
  history: PrimaryLsnHistory,
): number {
  const known = replay === undefined ? undefined : history.secondsBehind(replay, performance.now())
  if (known !== undefined) return known
  if (report.caught_up === true || report.since_replay === null) return 0
  return Math.max(0, Number(report.since_replay))
}
