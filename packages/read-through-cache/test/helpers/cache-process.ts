/**
 * A separate Node process holding its own cache, driven over stdin/stdout (one JSON object per
 * line). Lets the tests prove cross-process behaviour with real processes rather than two
 * instances in one event loop.
 */
import { createInterface } from 'node:readline'
import pg from 'pg'
import { createReadThroughCache } from '../../src/index.js'
import { connect, type RedisTarget } from './redis-target.js'

interface Config {
  target: RedisTarget
  pgUrl: string
  prefix: string
  leases: boolean
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config
const redis = connect(config.target)
const pool = new pg.Pool({ connectionString: config.pgUrl, max: 4 })
const cache = createReadThroughCache({
  redis,
  prefix: config.prefix,
  leases: config.leases,
  leaseWaitTimeoutMs: 60_000,
  // Four processes start 1,000 calls each on a loaded machine: a command timing out there would
  // (by design) fall through to a lease-less load, which is the outage behaviour, not this test's.
  commandTimeoutMs: 5_000,
})

function send(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`)
}

type Command =
  | { id: number; op: 'burst'; key: string; counter: string; calls: number }
  | { id: number; op: 'load'; key: string; value: string }
  | { id: number; op: 'hasLocal'; key: string }
  | { id: number; op: 'close' }

async function handle(command: Command): Promise<Record<string, unknown>> {
  switch (command.op) {
    case 'burst': {
      // The loader is a real query that counts itself: the counter row says how often it ran, fleet-wide.
      const loader = async () => {
        const { rows } = await pool.query<{ n: number }>(
          'WITH u AS (UPDATE rtc_counter SET n = n + 1 WHERE name = $1 RETURNING n) SELECT u.n, pg_sleep(0.3) FROM u',
          [command.counter],
        )
        return `loaded-${rows[0]?.n}`
      }
      const values = await Promise.all(
        Array.from({ length: command.calls }, () => cache.getOrLoad(command.key, loader)),
      )
      return {
        values: [...new Set(values)],
        loads: cache.stats().loads,
        redisErrors: cache.stats().redisErrors,
      }
    }
    case 'load': {
      const value = await cache.getOrLoad(command.key, () => command.value)
      await cache.settled() // the write to Redis and the local tier finishes after the answer
      return { value }
    }
    case 'hasLocal':
      return { hasLocal: cache.hasLocal(command.key) }
    case 'close':
      await cache.close()
      await redis.quit().catch(() => redis.disconnect())
      await pool.end()
      return {}
  }
}

await cache.ready()
await pool.query('SELECT 1')
send({ ready: true })
const lines = createInterface({ input: process.stdin })
lines.on('line', (line) => {
  const command = JSON.parse(line) as Command
  handle(command).then(
    (result) => {
      send({ id: command.id, ...result })
      if (command.op === 'close') process.exit(0)
    },
    (error: unknown) => send({ id: command.id, error: String(error) }),
  )
})
