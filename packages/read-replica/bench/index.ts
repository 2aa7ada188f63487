/**
 * pnpm bench: (1) primary-key select through the router vs raw Kysely on the same replica;
 * (2) write-then-read sessions with a 300 ms apply delay: stale reads and replica share for this
 * package, Rails-style 2 s stickiness and random routing. Final line: BENCH {json}.
 */
import { type PostgresCluster, startPostgres } from '@scale/testkit'
import { type Generated, Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { createReplicatedKysely } from '../src/index.js'

interface Database {
  item: { id: Generated<number>; value: string }
}

const SELECT_SECONDS = Number(process.env.BENCH_SELECT_SECONDS ?? 8)
const SELECT_ROUNDS = 6
const SELECT_CONCURRENCY = 16
const APPLY_DELAY_MS = 300
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 240)
const SESSION_CONCURRENCY = 60
const READS_PER_SESSION = 8
const READ_SPACING_MS = 300
const STICKY_MS = 2_000

function newPool(node: { connection: pg.PoolConfig }, max = 20): pg.Pool {
  const pool = new pg.Pool({ ...node.connection, max })
  pool.on('error', () => {})
  return pool
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}

interface SelectResult {
  opsPerSec: number
  p50Ms: number
  p99Ms: number
}

async function pkSelectLoad(db: Kysely<Database>, seconds: number, maxId: number): Promise<SelectResult> {
  const latencies: number[] = []
  const deadline = performance.now() + seconds * 1000
  await Promise.all(
    Array.from({ length: SELECT_CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        const id = 1 + Math.floor(Math.random() * maxId)
        const started = performance.now()
        await db.selectFrom('item').select(['id', 'value']).where('id', '=', id).executeTakeFirst()
        latencies.push(performance.now() - started)
      }
    }),
  )
  latencies.sort((a, b) => a - b)
  return {
    opsPerSec: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  }
}

function merge(results: SelectResult[]): SelectResult {
  const avg = (pick: (r: SelectResult) => number) =>
    results.reduce((sum, r) => sum + pick(r), 0) / results.length
  return { opsPerSec: avg((r) => r.opsPerSec), p50Ms: avg((r) => r.p50Ms), p99Ms: avg((r) => r.p99Ms) }
}

/**
 * Both clients run at the same time against the same replica, 16 loops each, in several short
 * rounds: on a shared machine, background load then hits both alike, and the throughput ratio
 * measures what the router costs per query rather than what the neighbours did that second.
 */
async function benchPkSelect(cluster: PostgresCluster) {
  const replica = cluster.replicas[0]
  if (!replica) throw new Error('replica expected')
  const raw = new Kysely<Database>({ dialect: new PostgresDialect({ pool: newPool(replica) }) })
  const routed = createReplicatedKysely<Database>({
    primary: newPool(cluster.primary),
    replicas: [newPool(replica)],
  })
  await routed.router.ready()
  const maxId = 10_000
  await Promise.all([pkSelectLoad(raw, 0.5, maxId), pkSelectLoad(routed, 0.5, maxId)])
  const rawRounds: SelectResult[] = []
  const routedRounds: SelectResult[] = []
  for (let round = 0; round < SELECT_ROUNDS; round++) {
    const [a, b] = await Promise.all([
      pkSelectLoad(raw, SELECT_SECONDS / SELECT_ROUNDS, maxId),
      pkSelectLoad(routed, SELECT_SECONDS / SELECT_ROUNDS, maxId),
    ])
    rawRounds.push(a)
    routedRounds.push(b)
  }
  // The router names its only replica 'replica-1': the share of selects it served.
  const byNode = routed.router.metrics().byNode
  const replicaShare =
    (byNode['replica-1']?.queries ?? 0) / Object.values(byNode).reduce((sum, n) => sum + n.queries, 0)
  await raw.destroy()
  await routed.destroy()
  // The median of per-round ratios: one noisy round (a neighbour's burst) does not decide it.
  const ratios = routedRounds
    .map((r, i) => r.opsPerSec / (rawRounds[i] as SelectResult).opsPerSec)
    .sort((a, b) => a - b)
  const medianRatio =
    ((ratios[(ratios.length - 1) >> 1] as number) + (ratios[ratios.length >> 1] as number)) / 2
  return { raw: merge(rawRounds), router: merge(routedRounds), routerReplicaShare: replicaShare, medianRatio }
}

/**
 * `read-replica*` rows: this package with WAL-position tokens; `-ctx` runs the write and its 8
 * reads in one request context, the others carry the token to a new request per read; `-500`
 * gives reads a 500 ms budget (above the 300 ms apply delay) instead of the default 50 ms.
 */
type Strategy =
  | 'read-replica'
  | 'read-replica-500'
  | 'read-replica-ctx'
  | 'read-replica-ctx-500'
  | 'rails-2s-sticky'
  | 'random'

interface SessionStats {
  reads: number
  stale: number
  /** latency of each session's first read (right after the write), ms */
  firstReadMs: number[]
  replicaReads: number
}

/**
 * One user session: a write, then reads spaced out over ~2 s, each read a separate "request"
 * that carries what the previous one handed out (token or write time, as a cookie would).
 */
async function runSessions(strategy: Strategy, cluster: PostgresCluster): Promise<SessionStats> {
  const primaryPort = cluster.primary.port
  const stats: SessionStats = { reads: 0, stale: 0, replicaReads: 0, firstReadMs: [] }
  const ours = strategy.startsWith('read-replica')
  const inContext = strategy.includes('-ctx')
  const routed = createReplicatedKysely<Database>({
    primary: newPool(cluster.primary),
    replicas: cluster.replicas.map((r) => newPool(r)),
    readYourWrites: ours,
    balance: 'random',
    ...(strategy.endsWith('-500') ? { rywWaitMs: 500 } : {}),
  })
  await routed.router.ready()
  const primary = new Kysely<Database>({ dialect: new PostgresDialect({ pool: newPool(cluster.primary) }) })
  const replicas = cluster.replicas.map(
    (r) => new Kysely<Database>({ dialect: new PostgresDialect({ pool: newPool(r) }) }),
  )
  const anyReplica = () => replicas[Math.floor(Math.random() * replicas.length)] as Kysely<Database>

  const session = async (index: number) => {
    const value = `${strategy}-${index}`
    let cookie: { token: string | undefined; wroteAt: number }
    let id: number
    if (inContext) {
      await routed.router.run(undefined, async () => {
        const { id } = await routed
          .insertInto('item')
          .values({ value })
          .returning('id')
          .executeTakeFirstOrThrow()
        for (let read = 0; read < READS_PER_SESSION; read++) {
          if (read > 0) await new Promise((resolve) => setTimeout(resolve, READ_SPACING_MS))
          const startedAt = performance.now()
          const row = await routed
            .selectFrom('item')
            .select(['value', sql<number>`inet_server_port()`.as('port')])
            .where('id', '=', id)
            .executeTakeFirst()
          if (read === 0) stats.firstReadMs.push(performance.now() - startedAt)
          count(row, value)
        }
      })
      return
    }
    if (ours) {
      const written = await routed.router.run(undefined, async () => {
        const row = await routed
          .insertInto('item')
          .values({ value })
          .returning('id')
          .executeTakeFirstOrThrow()
        return { id: row.id, token: routed.router.token() }
      })
      id = written.id
      cookie = { token: written.token, wroteAt: Date.now() }
    } else {
      const row = await primary.insertInto('item').values({ value }).returning('id').executeTakeFirstOrThrow()
      id = row.id
      cookie = { token: undefined, wroteAt: Date.now() }
    }
    for (let read = 0; read < READS_PER_SESSION; read++) {
      if (read > 0) await new Promise((resolve) => setTimeout(resolve, READ_SPACING_MS))
      const query = (db: Kysely<Database>) =>
        db
          .selectFrom('item')
          .select(['value', sql<number>`inet_server_port()`.as('port')])
          .where('id', '=', id)
          .executeTakeFirst()
      let row: { value: string; port: number } | undefined
      const startedAt = performance.now()
      if (ours) {
        row = await routed.router.run(cookie.token, () => query(routed))
      } else if (strategy === 'rails-2s-sticky') {
        row = await query(Date.now() - cookie.wroteAt < STICKY_MS ? primary : anyReplica())
      } else {
        row = await query(anyReplica())
      }
      if (read === 0) stats.firstReadMs.push(performance.now() - startedAt)
      count(row, value)
    }
  }
  const count = (row: { value: string; port: number } | undefined, value: string) => {
    stats.reads++
    // A stale read finds nothing: the row was written before this session's first read.
    if (row?.value !== value) stats.stale++
    // Where the read ran is told by the server; a stale read ran on a replica too.
    if (row === undefined || row.port !== primaryPort) stats.replicaReads++
  }

  let next = 0
  await Promise.all(
    Array.from({ length: SESSION_CONCURRENCY }, async () => {
      while (next < SESSIONS) await session(next++)
    }),
  )
  await Promise.all([routed.destroy(), primary.destroy(), ...replicas.map((r) => r.destroy())])
  return stats
}

function fmt(n: number, digits = 0): string {
  return n.toFixed(digits)
}

async function main(): Promise<void> {
  const started = performance.now()
  const cluster = await startPostgres({ replicas: 2, settings: { max_connections: 300 } })
  try {
    await cluster.primary.query('create table item (id bigserial primary key, value text not null)')
    await cluster.primary.query(
      `insert into item (value) select 'seed-' || g from generate_series(1, 10000) g`,
    )
    await cluster.waitForReplication()

    const select = await benchPkSelect(cluster)
    const ratio = select.router.opsPerSec / select.raw.opsPerSec

    await Promise.all(cluster.replicas.map((r) => r.setApplyDelay(APPLY_DELAY_MS)))
    const strategies: Strategy[] = [
      'read-replica',
      'read-replica-500',
      'read-replica-ctx',
      'read-replica-ctx-500',
      'rails-2s-sticky',
      'random',
    ]
    const sessions: Record<string, SessionStats & { replicaShare: number; firstReadP50Ms: number }> = {}
    for (const strategy of strategies) {
      const stats = await runSessions(strategy, cluster)
      const first = [...stats.firstReadMs].sort((a, b) => a - b)
      sessions[strategy] = {
        ...stats,
        replicaShare: stats.replicaReads / stats.reads,
        firstReadP50Ms: percentile(first, 50),
      }
    }

    console.log(
      `\nPrimary-key select, raw and router side by side (${SELECT_CONCURRENCY} loops each, same replica server, ${SELECT_SECONDS} s)`,
    )
    console.log('| client              | ops/s   | p50 ms | p99 ms |')
    console.log('|---------------------|---------|--------|--------|')
    console.log(
      `| raw Kysely          | ${fmt(select.raw.opsPerSec).padStart(7)} | ${fmt(select.raw.p50Ms, 2).padStart(6)} | ${fmt(select.raw.p99Ms, 2).padStart(6)} |`,
    )
    console.log(
      `| @scale/read-replica | ${fmt(select.router.opsPerSec).padStart(7)} | ${fmt(select.router.p50Ms, 2).padStart(6)} | ${fmt(select.router.p99Ms, 2).padStart(6)} |`,
    )
    console.log(
      `router / raw throughput: ${fmt(ratio, 3)} overall, ${fmt(select.medianRatio, 3)} median of ${SELECT_ROUNDS} rounds (goal >= 0.98)`,
    )
    console.log(
      `\nWrite, then ${READS_PER_SESSION} reads ${READ_SPACING_MS} ms apart (new request each, cookie carried), apply delay ${APPLY_DELAY_MS} ms, ${SESSIONS} sessions`,
    )
    console.log('| routing              | reads | stale | replica share | first read p50 ms |')
    console.log('|----------------------|-------|-------|---------------|-------------------|')
    for (const [name, s] of Object.entries(sessions)) {
      console.log(
        `| ${name.padEnd(20)} | ${String(s.reads).padStart(5)} | ${String(s.stale).padStart(5)} | ${fmt(s.replicaShare * 100, 1).padStart(12)}% | ${fmt(s.firstReadP50Ms, 1).padStart(17)} |`,
      )
    }
    console.log('(-ctx: write and reads in one context; -500: rywWaitMs 500 instead of the default 50)')
    const bench = {
      pkSelect: {
        rawOpsPerSec: Math.round(select.raw.opsPerSec),
        routerOpsPerSec: Math.round(select.router.opsPerSec),
        ratio: Number(ratio.toFixed(3)),
        medianRoundRatio: Number(select.medianRatio.toFixed(3)),
        rawP50Ms: Number(select.raw.p50Ms.toFixed(3)),
        rawP99Ms: Number(select.raw.p99Ms.toFixed(3)),
        routerP50Ms: Number(select.router.p50Ms.toFixed(3)),
        routerP99Ms: Number(select.router.p99Ms.toFixed(3)),
        routerReplicaShare: Number(select.routerReplicaShare.toFixed(3)),
      },
      writeThenRead: Object.fromEntries(
        Object.entries(sessions).map(([name, s]) => [
          name,
          {
            reads: s.reads,
            stale: s.stale,
            replicaShare: Number(s.replicaShare.toFixed(3)),
            firstReadP50Ms: Number(s.firstReadP50Ms.toFixed(1)),
          },
        ]),
      ),
      applyDelayMs: APPLY_DELAY_MS,
      durationSeconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    }
    console.log(`BENCH ${JSON.stringify(bench)}`)
  } finally {
    await cluster.stop()
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
