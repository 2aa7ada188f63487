import type { Topology } from '../topology/topology.js'
import type { WebStats } from '../topology/web-server.js'

/** The web tier's counters at one moment, per running server. */
export type TierSnapshot = Map<string, WebStats>

export async function snapshot(topology: Topology): Promise<TierSnapshot> {
  const running = topology.web.filter((w) => w.running)
  const stats = await Promise.all(running.map((w) => w.stats().catch(() => undefined)))
  const result: TierSnapshot = new Map()
  running.forEach((w, i) => {
    const s = stats[i]
    if (s) result.set(w.name, s)
  })
  return result
}

/** What the web tier did between two snapshots (servers present in both). */
export interface TierDelta {
  primaryQueries: number
  replicaQueries: number
  writeQueries: number
  userLoads: number
  photoLoads: number
  cacheHits: number
  cacheMisses: number
}

const num = (value: unknown) => (typeof value === 'number' ? value : 0)

export function delta(before: TierSnapshot, after: TierSnapshot): TierDelta {
  const total: TierDelta = {
    primaryQueries: 0,
    replicaQueries: 0,
    writeQueries: 0,
    userLoads: 0,
    photoLoads: 0,
    cacheHits: 0,
    cacheMisses: 0,
  }
  for (const [name, end] of after) {
    const start = before.get(name)
    if (!start) continue
    for (const [node, counters] of Object.entries(end.db.byNode)) {
      const queries = counters.queries - (start.db.byNode[node]?.queries ?? 0)
      if (node === end.db.primary) total.primaryQueries += queries
      else total.replicaQueries += queries
    }
    total.writeQueries += num(end.db.byReason.write) - num(start.db.byReason.write)
    total.userLoads += end.userLoads - start.userLoads
    total.photoLoads += end.photoLoads - start.photoLoads
    total.cacheHits +=
      num(end.cache?.hitsRedis) +
      num(end.cache?.hitsLocal) -
      num(start.cache?.hitsRedis) -
      num(start.cache?.hitsLocal)
    total.cacheMisses += num(end.cache?.misses) - num(start.cache?.misses)
  }
  return total
}

export const ratio = (part: number, whole: number) =>
  whole > 0 ? Math.round((part / whole) * 1000) / 1000 : 0

/** Database figures of a load phase, per 1,000 requests so stages can be set side by side. */
export function databaseMeasures(d: TierDelta, requests: number): Record<string, number> {
  const reads = d.primaryQueries + d.replicaQueries - d.writeQueries
  const cached = d.cacheHits + d.cacheMisses
  return {
    ...(cached > 0 && { cacheHitRatio: ratio(d.cacheHits, cached) }),
    primaryQueriesPer1kRequests: Math.round((d.primaryQueries / Math.max(1, requests)) * 1000),
    dbQueriesPer1kRequests: Math.round(
      ((d.primaryQueries + d.replicaQueries) / Math.max(1, requests)) * 1000,
    ),
    readsOffPrimaryShare: ratio(d.replicaQueries, reads),
  }
}
