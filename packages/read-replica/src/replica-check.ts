/**
 * What one health check of a replica says: the query it runs, and how its answer moves the
 * replica's replay position, lag and hysteresis counters toward exclusion or rejoining.
 */
import { parseLsn } from './lsn.js'
import type { PrimaryDetector } from './primary-detector.js'
import { advanceReplay, lagSeconds, type ReplayReport } from './replay-estimates.js'
import type { ReplicaState } from './replica-state.js'

export interface ReplicaCheckRow extends ReplayReport {
  recovery: boolean
  replay: string | null
}

// On the replica: replay position, and seconds since the last replayed commit counted only while
// received WAL is still waiting to be replayed (an idle primary must not look like lag).
export const REPLICA_CHECK = `select pg_is_in_recovery() as recovery,
  pg_last_wal_replay_lsn()::text as replay,
  (pg_last_wal_receive_lsn() is not distinct from pg_last_wal_replay_lsn()) as caught_up,
  extract(epoch from (clock_timestamp() - pg_last_xact_replay_timestamp()))::float8 as since_replay`

export interface LagLimits {
  maxLagSeconds: number
  maxLagBytes: number
  excludeAfterChecks: number
  rejoinAfterChecks: number
}

/** What the monitor must do after a check: exclude the replica (and why), let it rejoin, or nothing. */
export type CheckVerdict = 'promoted' | 'lagging' | 'rejoin' | undefined

/**
 * Records a successful check's answer on `replica` (replay LSN, lag in seconds and bytes, the
 * consecutive good/bad counters) and returns what follows from it. Changes no status itself: the
 * monitor owns exclusion and rejoining, with their events.
 */
export function recordReplicaCheck(
  replica: ReplicaState,
  row: ReplicaCheckRow | undefined,
  primaries: Pick<PrimaryDetector, 'lsnHistory' | 'primaryLsn'>,
  limits: LagLimits,
): CheckVerdict {
  if (row?.recovery !== true) {
    // A promoted replica is a primary of its own timeline: reading it risks split-brain data.
    replica.consecutiveGood = 0
    replica.replayLsn = undefined
    return 'promoted'
  }
  const replay = parseLsn(row.replay)
  if (replay !== undefined && replica.replayLsn !== undefined && replay < replica.replayLsn) {
    // Went backwards: the server restarted from an older point. Trust only the new value.
    replica.replayLsn = replay
  } else {
    advanceReplay(replica, replay, primaries.lsnHistory)
  }
  replica.lagSeconds = lagSeconds(row, replay, primaries.lsnHistory)
  replica.lagBytes =
    primaries.primaryLsn !== undefined && replay !== undefined
      ? Math.max(0, Number(primaries.primaryLsn - replay))
      : undefined
  const { maxLagSeconds, maxLagBytes } = limits
  const lagging = replica.lagSeconds > maxLagSeconds || (replica.lagBytes ?? 0) > maxLagBytes
  // Hysteresis: rejoining needs the lag well under the limit, not just under it, so a replica
  // hovering around maxLag does not flap in and out.
  const comfortable = replica.lagSeconds <= maxLagSeconds / 2 && (replica.lagBytes ?? 0) <= maxLagBytes / 2
  if (replica.status === 'healthy') {
    replica.consecutiveBad = lagging ? replica.consecutiveBad + 1 : 0
    return replica.consecutiveBad >= limits.excludeAfterChecks ? 'lagging' : undefined
  }
  replica.consecutiveGood = comfortable ? replica.consecutiveGood + 1 : 0
  return replica.consecutiveGood >= limits.rejoinAfterChecks ? 'rejoin' : undefined
}
