/**
 * pnpm bench, side by side with the naive `key % N` router:
 * (1) routing decisions per second, (2) max/mean keys per shard over 1M keys, (3) share of keys
 * moved going from 4 to 5 shards against the 1/(n+1) minimum, (4) scatter-gather over 4 shards
 * against the same query on one database holding all the rows. Final line: BENCH {json}.
 */
import { type PostgresCluster, startPostgresClusters } from '@scale/testkit'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import {
  createShardedKysely,
  createShardMap,
  createShardMover,
  planRebalance,
  type ShardMap,
} from '../src/index.js'
import { NAMES, ReshardRig, TABLES } from '../test/reshard-harness.js'

const KEYS = 1_000_000
const SHARDS = ['s1', 's2', 's3', 's4']
const ROWS = Number(process.env.BENCH_ROWS ?? 40_000)
const QUERY_ROUNDS = Number(process.env.BENCH_QUERY_ROUNDS ?? 60)

function opsPerSecond(run: () => void, rounds = 5): number {
  let best = 0
  for (let round = 0; round < rounds; round++) {
    const started = process.hrtime.bigint()
    run()
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    best = Math.max(best, KEYS / seconds)
  }
  return best
}

function spread(map: ShardMap): { max: number; mean: number; ratio: number } {
  const counts = new Map<string, number>()
  for (let key = 1; key <= KEYS; key++) {
    const shard = map.shardOf(key)
    counts.set(shard, (counts.get(shard) ?? 0) + 1)
  }
  const max = Math.max(...counts.values())
  const mean = KEYS / map.shards.length
  return { max, mean, ratio: max / mean }
}

function movedFraction(before: ShardMap, after: ShardMap): number {
  let moved = 0
  for (let key = 1; key <= KEYS; key++) if (before.shardOf(key) !== after.shardOf(key)) moved++
  return moved / KEYS
}

function pool(cluster: PostgresCluster): pg.Pool {
  const p = new pg.Pool({ ...cluster.primary.connection, max: 4 })
  p.on('error', () => {})
  return p
}

interface Db {
  events: { id: number; user_id: number; kind: string; amount: number }
}

async function timeQuery(run: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 5; i++) await run() // warm up plans and connections
  const times: number[] = []
  for (let i = 0; i < QUERY_ROUNDS; i++) {
    const started = process.hrtime.bigint()
    await run()
    times.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)] as number
}

async function scatterGather(
  clusters: PostgresCluster[],
): Promise<Record<string, { shardedMs: number; singleMs: number; ratio: number }>> {
  const map = createShardMap({ shards: SHARDS })
  const single = new Kysely<Db>({
    dialect: new PostgresDialect({ pool: pool(clusters[4] as PostgresCluster) }),
  })
  const db = await createShardedKysely<Db>({
    shards: Object.fromEntries(
      SHARDS.map((name, index) => [
        name,
        new Kysely<Db>({ dialect: new PostgresDialect({ pool: pool(clusters[index] as PostgresCluster) }) }),
      ]),
    ),
    map,
  })
  try {
    const schema = sql`create table events (id int primary key, user_id int not null, kind text not null, amount int not null)`
    await schema.execute(single)
    for (const name of SHARDS) await schema.execute(db.shard(name))
    const rows = Array.from({ length: ROWS }, (_, i) => ({
      id: i + 1,
      user_id: 1 + (i % 5_000),
      kind: `k${i % 37}`,
      amount: (i * 7919) % 1000,
    }))
    for (let i = 0; i < rows.length; i += 2_000) {
      const chunk = rows.slice(i, i + 2_000)
      await single.insertInto('events').values(chunk).execute()
      for (const name of SHARDS) {
        const mine = chunk.filter((row) => map.shardOf(row.user_id) === name)
        if (mine.length > 0) await db.shard(name).insertInto('events').values(mine).execute()
      }
    }
    await sql`analyze events`.execute(single)
    for (const name of SHARDS) await sql`analyze events`.execute(db.shard(name))
    const queries = {
      orderByLimit: (k: Kysely<Db>) =>
        k
          .selectFrom('events')
          .select(['id', 'user_id', 'amount'])
          .orderBy('amount', 'desc')
          .orderBy('id')
          .limit(20)
          .offset(10),
      groupByHaving: (k: Kysely<Db>) =>
        k
          .selectFrom('events')
          .select(['kind', (eb) => eb.fn.countAll().as('n'), (eb) => eb.fn.avg('amount').as('avg')])
          .groupBy('kind')
          .having((eb) => eb.fn.countAll(), '>', 10)
          .orderBy('kind'),
    }
    const results: Record<string, { shardedMs: number; singleMs: number; ratio: number }> = {}
    for (const [name, build] of Object.entries(queries)) {
      const singleMs = await timeQuery(() => build(single).execute())
      const shardedMs = await timeQuery(() => db.allShards().select((k) => build(k)))
      results[name] = { shardedMs, singleMs, ratio: shardedMs / singleMs }
    }
    return results
  } finally {
    await db.close()
    await single.destroy()
  }
}

/** A live move of 4 -> 5 shards under 4 writers: how long each bucket's writes paused, and the audit. */
async function reshardUnderWrites(clusters: PostgresCluster[]) {
  const rig = new ReshardRig(clusters)
  try {
    await rig.reset(20_000)
    const mover = createShardMover({
      control: rig.control,
      store: rig.store,
      shards: rig.shards(),
      tables: TABLES,
      cleanupDelayMs: 500,
    })
    await mover.install()
    rig.startWriters(4)
    const started = Date.now()
    const reports = await mover.rebalance(NAMES)
    const seconds = (Date.now() - started) / 1000
    await rig.stopWriters()
    const audit = await rig.audit()
    const pauses = reports.map((report) => report.pauseMs)
    return {
      buckets: reports.length,
      seconds,
      rowsCopied: reports.reduce((sum, r) => sum + r.rowsCopied, 0),
      changesReplayed: reports.reduce((sum, r) => sum + r.changesApplied, 0),
      longestPauseMs: Math.max(...pauses),
      meanPauseMs: pauses.reduce((a, b) => a + b, 0) / pauses.length,
      writerOps: rig.counts.ops,
      writerFailures: rig.counts.failures,
      wrongReads: rig.counts.wrongReads,
      ...audit,
    }
  } finally {
    await rig.close()
  }
}

const bucketMap = createShardMap({ shards: SHARDS })
const moduloMap = createShardMap({ shards: SHARDS, strategy: 'modulo' })
let sink = 0
const bucketRate = opsPerSecond(() => {
  for (let key = 1; key <= KEYS; key++) sink += bucketMap.shardOf(key).length
})
const moduloRate = opsPerSecond(() => {
  for (let key = 1; key <= KEYS; key++) sink += moduloMap.shardOf(key).length
})
const naiveRate = opsPerSecond(() => {
  for (let key = 1; key <= KEYS; key++) sink += (SHARDS[key % SHARDS.length] as string).length
})
const stringRate = opsPerSecond(() => {
  for (let key = 1; key <= KEYS; key++) sink += bucketMap.shardOf(`user-${key}`).length
})
console.log(`routing decisions/s over ${KEYS} integer keys (best of 5):`)
console.log(`  bucket map (hash -> bucket -> shard) ${(bucketRate / 1e6).toFixed(2)} M/s`)
console.log(`  % N through the map                  ${(moduloRate / 1e6).toFixed(2)} M/s`)
console.log(
  `  naive inline shards[key % N]         ${(naiveRate / 1e6).toFixed(2)} M/s  (bucket map is ${(naiveRate / bucketRate).toFixed(1)}x slower)`,
)
console.log(`  bucket map, string keys              ${(stringRate / 1e6).toFixed(2)} M/s`)

const bucketSpread = spread(bucketMap)
const moduloSpread = spread(moduloMap)
console.log(`keys per shard over ${KEYS} sequential keys, 4 shards:`)
console.log(
  `  bucket map  max ${bucketSpread.max}  mean ${bucketSpread.mean}  max/mean ${bucketSpread.ratio.toFixed(4)}`,
)
console.log(
  `  % N         max ${moduloSpread.max}  mean ${moduloSpread.mean}  max/mean ${moduloSpread.ratio.toFixed(4)}`,
)

const plan = planRebalance(bucketMap, [...SHARDS, 's5'])
let after = bucketMap
for (const move of plan.moves) after = after.withBucketOn(move.bucket, move.to)
const bucketMoved = movedFraction(bucketMap, after)
const moduloMoved = movedFraction(
  moduloMap,
  createShardMap({ shards: [...SHARDS, 's5'], strategy: 'modulo' }),
)
console.log('keys moved going from 4 to 5 shards:')
console.log(`  minimum 1/(n+1)        ${(plan.minimumFraction * 100).toFixed(2)}%`)
console.log(
  `  bucket plan            ${(bucketMoved * 100).toFixed(2)}% of keys (${plan.moves.length} of 1024 buckets)`,
)
console.log(`  % N                    ${(moduloMoved * 100).toFixed(2)}% of keys`)

const clusters = await startPostgresClusters(5)
const scatter = await scatterGather(clusters)
console.log(`scatter-gather over 4 shards vs one database with all ${ROWS} rows (median of ${QUERY_ROUNDS}):`)
for (const [name, r] of Object.entries(scatter))
  console.log(
    `  ${name.padEnd(14)} sharded ${r.shardedMs.toFixed(2)} ms  single ${r.singleMs.toFixed(2)} ms  ratio ${r.ratio.toFixed(2)}`,
  )

const reshard = await reshardUnderWrites(clusters)
await Promise.all(clusters.map((cluster) => cluster.stop()))
console.log(`live reshard 4 -> 5 shards (16 buckets, 20000 rows) under 4 writers through the router:`)
console.log(
  `  ${reshard.buckets} buckets in ${reshard.seconds.toFixed(1)} s, ${reshard.rowsCopied} rows copied, ${reshard.changesReplayed} changes replayed, ${reshard.writerOps} writer ops`,
)
console.log(
  `  write pause per bucket: longest ${reshard.longestPauseMs} ms, mean ${reshard.meanPauseMs.toFixed(0)} ms`,
)
console.log(
  `  lost ${reshard.lost}, duplicated ${reshard.duplicated}, wrong shard ${reshard.wrongShard}, ghosts ${reshard.ghosts}, failed writes ${reshard.writerFailures}, wrong reads ${reshard.wrongReads}`,
)

console.log(
  `BENCH ${JSON.stringify({
    package: '@scale/sharding',
    routing: {
      bucketPerSec: Math.round(bucketRate),
      moduloPerSec: Math.round(moduloRate),
      naiveModuloPerSec: Math.round(naiveRate),
      stringKeysPerSec: Math.round(stringRate),
    },
    spread: { bucket: bucketSpread, modulo: moduloSpread },
    moved4to5: {
      minimum: plan.minimumFraction,
      bucket: bucketMoved,
      modulo: moduloMoved,
      bucketsMoved: plan.moves.length,
    },
    scatterGather: scatter,
    reshard,
    sink: sink > 0,
  })}`,
)
