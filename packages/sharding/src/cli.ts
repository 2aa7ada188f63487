#!/usr/bin/env node
// scale-shard: plan, run and check bucket moves from a terminal. Reads a JSON config:
// { "control": "postgres://...", "shards": { "s1": "postgres://...", ... },
//   "tables": [{ "name": "photo", "shardKey": "user_id", "primaryKey": "id" }],
//   "mapTable"?: "scale_shard_map", "chunkSize"?: 500, "cleanupDelayMs"?: 5000 }
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { Kysely, PostgresDialect } from 'kysely'
import { ShardingError } from './errors.js'
import { postgresMapStore } from './map-store.js'
import { createShardMover } from './reshard/mover.js'
import { createShardMap } from './shard-map.js'
import type { ShardedTable } from './shard-sql.js'

interface CliConfig {
  control: string
  shards: Record<string, string>
  tables: ShardedTable[]
  mapTable?: string
  chunkSize?: number
  cleanupDelayMs?: number
}

const USAGE = `usage: scale-shard <command> --config <file.json> [options]
  init    --shards s1,s2,...  [--buckets 1024]   save the first shard map (epoch 1)
  install                                       install hash, bucket state and guard triggers on every shard
  plan    --shards s1,...,s5                    buckets to move to even out over these shards, vs the minimum
  move    --shards s1,...,s5                    run the plan one bucket at a time (resumes an unfinished move)
  move    --bucket N --to s5                    move one bucket
  verify  --bucket N                            rows of the bucket on each shard
  status                                        moves recorded in the control table`

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      shards: { type: 'string' },
      bucket: { type: 'string' },
      to: { type: 'string' },
      buckets: { type: 'string' },
    },
  })
  const command = positionals[0]
  if (!command || !values.config) {
    process.stderr.write(`${USAGE}\n`)
    return 2
  }
  const config = JSON.parse(await readFile(values.config, 'utf8')) as CliConfig
  const pg = await import('pg').catch((cause: unknown) => {
    throw new ShardingError(
      'E_SHARD_DEPENDENCY_MISSING',
      'scale-shard needs the pg package: npm install pg',
      {
        context: { dependency: 'pg' },
        cause,
      },
    )
  })
  const Pool = (pg.default ?? pg).Pool
  const open = (url: string) => {
    const pool = new Pool({ connectionString: url, max: 4 })
    pool.on('error', () => {})
    // biome-ignore lint/suspicious/noExplicitAny: the CLI works on any schema
    return new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
  }
  const control = open(config.control)
  const shards = Object.fromEntries(Object.entries(config.shards).map(([name, url]) => [name, open(url)]))
  const store = postgresMapStore({ db: control, ...(config.mapTable ? { table: config.mapTable } : {}) })
  const list = (text: string | undefined) => (text ?? '').split(',').filter(Boolean)
  const print = (line: string) => process.stdout.write(`${line}\n`)
  const mover = createShardMover({
    control,
    store,
    shards,
    tables: config.tables,
    ...(config.chunkSize ? { chunkSize: config.chunkSize } : {}),
    ...(config.cleanupDelayMs !== undefined ? { cleanupDelayMs: config.cleanupDelayMs } : {}),
    onProgress: (event) =>
      print(
        `bucket ${event.bucket}: ${event.step}${event.rows !== undefined ? ` ${event.rows} rows` : ''}${event.changes !== undefined ? ` ${event.changes} changes` : ''}`,
      ),
  })
  try {
    switch (command) {
      case 'init': {
        const map = createShardMap({
          shards: list(values.shards),
          bucketCount: Number(values.buckets ?? 1024),
        })
        await store.save(map)
        print(`saved epoch ${map.epoch}: ${map.data.bucketCount} buckets over ${map.shards.join(', ')}`)
        return 0
      }
      case 'install':
        await mover.install()
        print(`installed on ${Object.keys(shards).join(', ')}`)
        return 0
      case 'plan': {
        const plan = await mover.plan(list(values.shards))
        for (const move of plan.moves) print(`bucket ${move.bucket}: ${move.from} -> ${move.to}`)
        print(
          `${plan.moves.length} buckets move: ${(plan.fractionMoved * 100).toFixed(2)}% of keys (minimum ${(plan.minimumFraction * 100).toFixed(2)}%)`,
        )
        return 0
      }
      case 'move': {
        const reports =
          values.bucket !== undefined
            ? [await mover.moveBucket(Number(values.bucket), String(values.to))]
            : await mover.rebalance(list(values.shards))
        for (const r of reports)
          print(
            `moved bucket ${r.bucket} ${r.source} -> ${r.target}: ${r.rowsCopied} rows copied, ${r.changesApplied} changes replayed, ${r.checksumChunks} checksum chunks match, write pause ${r.pauseMs} ms${r.resumed ? ' (resumed)' : ''}`,
          )
        const longest = Math.max(0, ...reports.map((r) => r.pauseMs))
        print(`done: ${reports.length} bucket(s) moved, longest write pause ${longest} ms`)
        return 0
      }
      case 'verify': {
        const report = await mover.verify(Number(values.bucket))
        for (const [shard, rows] of Object.entries(report.rowsByShard))
          print(`${shard}: ${rows} rows${shard === report.owner ? ' (owner)' : ''}`)
        const stray = Object.entries(report.rowsByShard).some(
          ([shard, rows]) => shard !== report.owner && rows > 0,
        )
        print(stray ? 'rows outside the owner shard' : 'ok')
        return stray ? 1 : 0
      }
      case 'status':
        for (const state of await mover.status())
          print(
            `bucket ${state.bucket}: ${state.source} -> ${state.target} ${state.step}${state.pauseMs !== null ? ` (pause ${state.pauseMs} ms)` : ''}`,
          )
        return 0
      default:
        process.stderr.write(`${USAGE}\n`)
        return 2
    }
  } finally {
    await mover.close()
    await Promise.all([control, ...Object.values(shards)].map((db) => db.destroy()))
  }
}

// `scale-shard status | head` closes the pipe early: that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0)
})

main().then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    process.stderr.write(`scale-shard: ${error instanceof ShardingError ? error.message : String(error)}\n`)
    process.exitCode = 1
  },
)
