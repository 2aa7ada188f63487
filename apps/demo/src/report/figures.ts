import { type DemoResults, isFailed } from '../runner/results.js'
import type { StageResult } from '../stages/stage.js'

/** One row of the report's main table, straight from results.json. */
export interface StageRow {
  stage: string
  throughputRps: number | undefined
  p50Ms: number | undefined
  p99Ms: number | undefined
  primaryQueriesPer1k: number | undefined
  dbQueriesPer1k: number | undefined
  readsOffPrimary: number | undefined
  cacheHitRatio: number | undefined
  edgeHitRatio: number | undefined
  staleReads: number | undefined
  loggedOutUsers: number | undefined
  drill: string
  drillErrors: number | undefined
  recoveryMs: number | undefined
  error: string | undefined
}

const num = (value: unknown) => (typeof value === 'number' ? value : undefined)
const sum = (a: number | undefined, b: number | undefined) =>
  a === undefined && b === undefined ? undefined : (a ?? 0) + (b ?? 0)

export function stageRows(results: DemoResults): StageRow[] {
  return results.stages.map((stage) => {
    const name = `${stage.number} ${stage.title}`
    if (isFailed(stage)) {
      return {
        stage: name,
        throughputRps: undefined,
        p50Ms: undefined,
        p99Ms: undefined,
        primaryQueriesPer1k: undefined,
        dbQueriesPer1k: undefined,
        readsOffPrimary: undefined,
        cacheHitRatio: undefined,
        edgeHitRatio: undefined,
        staleReads: undefined,
        loggedOutUsers: undefined,
        drill: 'failed',
        drillErrors: undefined,
        recoveryMs: undefined,
        error: stage.error.split('\n')[0],
      }
    }
    const s: StageResult = stage
    return {
      stage: name,
      throughputRps: s.load.throughputRps,
      p50Ms: s.load.latencyMs.p50,
      p99Ms: s.load.latencyMs.p99,
      primaryQueriesPer1k: num(s.measures.primaryQueriesPer1kRequests),
      dbQueriesPer1k: num(s.measures.dbQueriesPer1kRequests),
      readsOffPrimary: num(s.measures.readsOffPrimaryShare),
      cacheHitRatio: num(s.measures.cacheHitRatio),
      edgeHitRatio: num(s.measures.edgeHitRatio),
      // Steady phase and drill together: a stale read is as wrong during a fault as without one.
      staleReads: sum(num(s.measures.staleReads), num(s.drill?.measures.staleReads)),
      // Over the whole stage: the drill's count includes the steady phase's users.
      loggedOutUsers: num(s.drill?.measures.loggedOutUsers) ?? num(s.measures.loggedOutUsers),
      drill: s.drill?.name ?? '',
      drillErrors: s.drill?.errors,
      recoveryMs: s.drill?.recoveryMs,
      error: undefined,
    }
  })
}

export const percent = (value: number | undefined) =>
  value === undefined ? '—' : `${Math.round(value * 100)}%`
export const plain = (value: number | undefined) => (value === undefined ? '—' : value.toLocaleString('en'))

/** "+12%" / "-44%": how `now` compares with `before`. */
export function change(now: number | undefined, before: number | undefined): string | undefined {
  if (now === undefined || before === undefined || before === 0) return undefined
  const diff = Math.round(((now - before) / before) * 100)
  return `${diff > 0 ? '+' : ''}${diff}%`
}
