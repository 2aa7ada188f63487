/**
 * A separate Node process holding its own cache, driven over stdin/stdout (one JSON object per
 * line). Lets the tests prove cross-process behaviour with real processes rather than two
 * instances in one event loop.
 */
import { createInterface } from 'node:readline'
import pg from 'pg'
import { createReadThroughCache, type ReadThroughCacheOptions } from '../../src/index.js'
import { connect, type RedisTarget } from './redis-target.js'

interface Config {
  target: RedisTarget
  /** Only the ops that query Postgres need it. */
  pgUrl?: string
  prefix: string
  leases: boolean
  /** Further cache options (JSON-serializable ones only). */
  options?: Partial<ReadThroughCacheOptions>
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config
const redis = connect(config.target)
const pool = config.pgUrl === undefined ? undefined : new pg.Pool({ connectionString: config.pgUrl, max: 4 })
const cache = createReadThroughCache({
  redis,
  prefix: config.prefix,
  leases: config.leases,
  leaseWaitTimeoutMs: 60_000,
  // Four processes start 1,000 calls each on a loaded machine: a command timing out there would
  // (by design) fall through to a lease-less load, which is the outage behaviour, not this test's.
  commandTimeoutMs: 5_000,
  ...config.options,
})

function send(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`)
}

type Command =
  | {
      id: number
      op: 'burst'
      key: string
      counter: string
      calls: number
      /** What the counted loader ends with. */
      outcome?: 'value' | 'missing' | 'error'
    }
  | { id: number; op: 'load'; key: string; value: string }
  | { id: number; op: 'hasLocal'; key: string }
  | { id: number; op: 'get'; key: string }
  | { id: number; op: 'delete'; key: string }
  | { id: number; op: 'deleteByTag'; tag: string }
  | { id: number; op: 'stats' }
  | { id: number; op: 'close' }

async function handle(command: Command): Promise<Record<string, unknown>> {
  switch (command.op) {
    case 'burst': {
      // The loader is a real query that counts itself: the counter row says how often it ran, fleet-wide.
      const loader = async () => {
        if (pool === undefined) throw new Error('burst needs pgUrl')
        const { rows } = await pool.query<{ n: number }>(
          'WITH u AS (UPDATE rtc_counter SET n = n + 1 WHERE name = $1 RETURNING n) SELECT u.n, pg_sleep(0.3) FROM u',
          [command.counter],
        )
        if (command.outcome === 'missing') return undefined
        if (command.outcome === 'error') throw new Error(`database says no (${rows[0]?.n})`)
        return `loaded-${rows[0]?.n}`
      }
      const settled = await Promise.all(
        Array.from({ length: command.calls }, () =>
          cache.getOrLoad(command.key, loader).then(
            (value) => ({ value }),
            (error: { name?: string; message?: string }) => ({ error: `${error.name}: ${error.message}` }),
          ),
        ),
      )
      return {
        values: [
          ...new Set(settled.map((s) => ('value' in s ? s.value : undefined)).filter((v) => v !== undefined)),
        ],
        missing: settled.filter((s) => 'value' in s && s.value === undefined).length,
        errors: [...new Set(settled.flatMap((s) => ('error' in s ? [s.error] : [])))],
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
    case 'get':
      return { value: await cache.get(command.key) }
    case 'delete':
    case 'deleteByTag': {
      // During an outage these throw with `queuedForReplay`; report it instead of failing.
      const done = command.op === 'delete' ? cache.delete(command.key) : cache.deleteByTag(command.tag)
      const error = await done.then(
        () => undefined,
        (e: unknown) => e as { code?: string; context?: Record<string, unknown> },
      )
      return { code: error?.code, queuedForReplay: error?.context?.queuedForReplay === true }
    }
    case 'stats':
      return { stats: cache.stats() }
    case 'close':
      await cache.close()
      await redis.quit().catch(() => redis.disconnect())
      await pool?.end()
      return {}
  }
}

await cache.ready()
await pool?.query('SELECT 1')
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
