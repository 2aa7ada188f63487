import type { PostgresNode } from '@scale/testkit'
import type { ConfirmedUpload } from '../load/upload-trickle.js'
import type { Topology } from '../topology/topology.js'
import type { DataCenters } from './data-centers.js'
import { killRegion } from './region.js'

/** When region a died and how long each promotion in region b took (ms after the kill). */
export interface RegionAFailover {
  killedAt: number
  postgresPromotedMs: number
  /** -1: no session store to promote (`regional` sessions). */
  sessionStorePromotedMs: number
}

/**
 * Region a dies whole (its load balancer, web servers, cache, the Postgres primary, the session
 * store and its endpoints, SIGKILLed at once), then region b's copies are promoted: the streaming
 * replica with `pg_promote()` and the session store's replica with `REPLICAOF NO ONE`. This does
 * at once what an orchestrator (Patroni, Redis Sentinel) does after its own detection delay, so
 * the figures are the failover's floor for this layout, not including detection.
 */
export async function failRegionA(topology: Topology, centers: DataCenters): Promise<RegionAFailover> {
  const standby = topology.database.replicas[0] as PostgresNode
  const sessions = centers.sessions
  const killedAt = Date.now()
  await killRegion(centers.a, [
    () => topology.database.primary.kill(),
    () => centers.endpoints.a.kill(),
    ...(sessions ? [() => sessions.primary.kill()] : []),
  ])
  const since = () => Date.now() - killedAt
  const [postgresPromotedMs, sessionStorePromotedMs] = await Promise.all([
    standby.promote().then(since),
    sessions ? sessions.replica.command('replicaof', 'no', 'one').then(since) : -1,
  ])
  return { killedAt, postgresPromotedMs, sessionStorePromotedMs }
}

/** Confirmed uploads missing from the database that survived: acknowledged writes the failover lost. */
export interface WriteAudit {
  confirmed: number
  confirmedBeforeKill: number
  lostBeforeKill: number
  lostAfterKill: number
}

export async function auditUploads(
  survivor: PostgresNode,
  confirmed: ConfirmedUpload[],
  killedAt: number,
): Promise<WriteAudit> {
  const ids = confirmed.map((upload) => upload.photoId)
  const rows = await survivor.query<{ id: string | number }>(
    'select id from photos where id = any($1::bigint[])',
    [ids],
  )
  const stored = new Set(rows.map((row) => Number(row.id)))
  const lost = confirmed.filter((upload) => !stored.has(upload.photoId))
  const before = (upload: ConfirmedUpload) => upload.ackedAt < killedAt
  return {
    confirmed: confirmed.length,
    confirmedBeforeKill: confirmed.filter(before).length,
    lostBeforeKill: lost.filter(before).length,
    lostAfterKill: lost.filter((upload) => !before(upload)).length,
  }
}
