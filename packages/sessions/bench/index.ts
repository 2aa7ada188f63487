// pnpm bench: @scale/sessions vs express-session 1.19 + connect-redis 9 (node-redis), same server
// code and routes, same Redis, one run, over real HTTP (autocannon, keep-alive connections).
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { fileURLToPath } from 'node:url'
import { type RedisServer, startRedis } from '@scale/testkit'
import autocannon from 'autocannon'

const CONNECTIONS = 32
const SESSIONS = 64
// Many short interleaved slices rather than one long run per side: on a shared machine the load
// from other processes drifts, and interleaving spreads that drift evenly over both sides.
const WARMUP_S = 2
const MEASURE_S = 2
const ROUNDS = 3
const SESSION_LIBS = ['scale', 'express-session'] as const
const FRAMEWORKS = ['express', 'node'] as const
/** The same server and route with no session layer: the floor the session layer's cost adds to. */
const FLOOR = 'none'
type SessionLib = (typeof SESSION_LIBS)[number] | typeof FLOOR
type Framework = (typeof FRAMEWORKS)[number]
/**
 * The route (read + write per request) on both servers, plus a read-only route on Express.
 * `floor` scenarios also run the server without sessions, to split each request's CPU into the
 * server's own share and the session layer's.
 */
const SCENARIOS = [
  { framework: 'express', path: '/bench', pool: 'small', label: 'express, read+write', floor: true },
  { framework: 'node', path: '/bench', pool: 'small', label: 'node:http, read+write', floor: true },
  {
    framework: 'express',
    path: '/bench',
    pool: 'large',
    label: 'express, read+write, 4 KB session',
    floor: false,
  },
  { framework: 'express', path: '/read', pool: 'small', label: 'express, read-only', floor: false },
  {
    framework: 'node',
    path: '/bench',
    pool: 'user',
    label: 'node:http, logged-in read+write',
    floor: false,
  },
] as const

const serverFile = fileURLToPath(new URL('./server.ts', import.meta.url))

interface Running {
  child: ChildProcess
  port: number
  /** Sessions holding one counter, sessions holding 20 more fields of 200 bytes, logged-in sessions. */
  cookies: { small: string[]; large: string[]; user: string[] }
}

function startServer(
  lib: SessionLib,
  framework: Framework,
  redisPort: number,
  env: Record<string, string> = {},
): Promise<Running> {
  const args = [
    '--import',
    'tsx',
    serverFile,
    lib,
    framework,
    String(redisPort),
    `bench-${lib}-${framework}:`,
  ]
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /PORT (\d+)/.exec(out)
      if (match) resolve({ child, port: Number(match[1]), cookies: { small: [], large: [], user: [] } })
    })
    child.once('exit', (code) => reject(new Error(`${lib}/${framework} server exited with ${code}`)))
  })
}

/** One request without a cookie: returns the session cookie the server issues. */
function newSessionCookie(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume()
      const setCookie = res.headers['set-cookie']?.[0]
      if (!setCookie) reject(new Error('no session cookie issued'))
      else resolve(setCookie.split(';')[0] as string)
    })
    req.on('error', reject)
    req.end()
  })
}

/** Drives one server: requests cycle through the pre-made sessions. */
function load(
  server: Running,
  seconds: number,
  path: string,
  pool: 'small' | 'large' | 'user',
): Promise<autocannon.Result> {
  let next = 0
  const cookies = server.cookies[pool]
  return autocannon({
    url: `http://127.0.0.1:${server.port}`,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        method: 'GET',
        path,
        setupRequest: (req) => {
          next = (next + 1) % cookies.length
          return { ...req, headers: { ...req.headers, cookie: cookies[next] as string } }
        },
      },
    ],
  })
}

/** Session commands Redis executed (INFO commandstats counts commands run inside scripts too). */
async function commandCount(redis: RedisServer): Promise<number> {
  let total = 0
  for (const [name, calls] of Object.entries(await redis.commandCounts())) {
    if (!['info', 'config'].includes(name.split('|')[0] as string)) total += calls
  }
  return total
}

/** CPU seconds a process has used so far (Linux /proc; 0 elsewhere, and then not reported). */
function cpuSecondsOf(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return 0
  }
}

interface Totals {
  requests: number
  seconds: number
  p50: number[]
  p99: number[]
  commands: number
  errors: number
  cpuSeconds: number
}

interface Figures {
  rps: number
  p50Ms: number
  p99Ms: number
  redisCommandsPerRequest: number
  /** CPU time of the web server process per request (the session layer's cost shows here). */
  serverCpuUsPerRequest: number
  errors: number
}

function figuresOf(t: Totals): Figures {
  return {
    rps: Math.round(t.requests / t.seconds),
    p50Ms: Math.max(...t.p50),
    p99Ms: Math.max(...t.p99),
    redisCommandsPerRequest: Number((t.commands / t.requests).toFixed(2)),
    serverCpuUsPerRequest: Math.round((t.cpuSeconds * 1e6) / t.requests),
    errors: t.errors,
  }
}

interface OutageFigures {
  requests: number
  p50Ms: number
  p99Ms: number
  /** Responses that were the 503 of a Redis outage (all of them, when nothing hangs or breaks). */
  share503: number
}

/**
 * Redis killed under load, our node:http server with and without the circuit breaker: the
 * first requests find out the hard way (they wait out `commandTimeoutMs`, 2 s by default); the
 * figures are taken after that, once the breaker has opened.
 */
async function redisDownPhase(breaker: boolean): Promise<OutageFigures> {
  const redis = await startRedis()
  const server = await startServer('scale', 'node', redis.port, breaker ? {} : { BENCH_BREAKER: 'off' })
  try {
    for (let i = 0; i < SESSIONS; i++)
      server.cookies.small.push(await newSessionCookie(server.port, '/bench'))
    await redis.kill()
    await load(server, 3, '/bench', 'small') // long enough for the first timeouts to open the breaker
    const result = await load(server, MEASURE_S * 2, '/bench', 'small')
    const total = result.requests.total
    return {
      requests: total,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      share503: Number((result['5xx'] / Math.max(1, total)).toFixed(3)),
    }
  } finally {
    const exited = new Promise((resolve) => server.child.once('exit', resolve))
    server.child.kill('SIGTERM')
    await exited
    await redis.dispose()
  }
}

async function main(): Promise<void> {
  const redis = await startRedis()
  const servers = new Map<string, Running>()
  const totals = new Map<string, Totals>()
  try {
    for (const framework of FRAMEWORKS) {
      for (const lib of [...SESSION_LIBS, FLOOR] as const) {
        const server = await startServer(lib, framework, redis.port)
        for (let i = 0; i < SESSIONS; i++) {
          // The floor server has no sessions: its requests carry a cookie of the same size, unread.
          const noSession = `unused=${'x'.repeat(96)}`
          server.cookies.small.push(lib === FLOOR ? noSession : await newSessionCookie(server.port, '/bench'))
          server.cookies.large.push(lib === FLOOR ? noSession : await newSessionCookie(server.port, '/seed'))
          server.cookies.user.push(lib === FLOOR ? noSession : await newSessionCookie(server.port, '/login'))
        }
        await load(server, WARMUP_S, '/bench', 'small')
        servers.set(`${lib}/${framework}`, server)
      }
    }
    // Alternate the order each round so neither side always runs on a warmer (or busier) machine.
    for (let round = 0; round < ROUNDS; round++) {
      for (const [index, scenario] of SCENARIOS.entries()) {
        const ordered: SessionLib[] =
          (round + index) % 2 === 0 ? [...SESSION_LIBS] : [...SESSION_LIBS].reverse()
        const libs = scenario.floor ? [...ordered, FLOOR] : ordered
        for (const lib of libs) {
          const server = servers.get(`${lib}/${scenario.framework}`) as Running
          await redis.command('config', 'resetstat')
          const cpuBefore = cpuSecondsOf(server.child.pid)
          const result = await load(server, MEASURE_S, scenario.path, scenario.pool)
          const cpuSeconds = cpuSecondsOf(server.child.pid) - cpuBefore
          const commands = await commandCount(redis)
          const key = `${lib} | ${scenario.label}`
          const total = totals.get(key) ?? {
            requests: 0,
            seconds: 0,
            p50: [],
            p99: [],
            commands: 0,
            errors: 0,
            cpuSeconds: 0,
          }
          totals.set(key, total)
          total.requests += result.requests.total
          total.seconds += result.duration
          total.p50.push(result.latency.p50)
          total.p99.push(result.latency.p99)
          total.commands += commands
          total.cpuSeconds += cpuSeconds
          total.errors += result.errors + result.timeouts + result.non2xx
          const rps = (result.requests.total / result.duration).toFixed(0).padStart(6)
          console.log(`round ${round + 1}  ${key.padEnd(52)} ${rps} req/s  p99 ${result.latency.p99} ms`)
        }
      }
    }
  } finally {
    for (const { child } of servers.values()) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    }
    await redis.dispose()
  }

  const results: Record<
    string,
    {
      scale: Figures
      expressSession: Figures
      /** The same server and route without sessions (floor scenarios only). */
      noSessions?: Figures
      /** Server CPU per request minus the floor's: what the session layer itself costs. */
      sessionLayerCpuUsPerRequest?: { scale: number; expressSession: number }
      throughputRatio: number
      p99Ratio: number
    }
  > = {}
  console.log('')
  console.log(
    '| scenario | session layer | req/s | p50 ms | p99 ms (worst slice) | server CPU µs/req | Redis cmds/req | errors |',
  )
  console.log('|---|---|---:|---:|---:|---:|---:|---:|')
  for (const scenario of SCENARIOS) {
    const ours = figuresOf(totals.get(`scale | ${scenario.label}`) as Totals)
    const anchor = figuresOf(totals.get(`express-session | ${scenario.label}`) as Totals)
    const throughputRatio = Number((ours.rps / anchor.rps).toFixed(2))
    const p99Ratio = Number((ours.p99Ms / anchor.p99Ms).toFixed(2))
    const cpuRatio = Number((ours.serverCpuUsPerRequest / anchor.serverCpuUsPerRequest).toFixed(2))
    const floorTotals = totals.get(`${FLOOR} | ${scenario.label}`)
    const floor = floorTotals && figuresOf(floorTotals)
    results[scenario.label] = {
      scale: ours,
      expressSession: anchor,
      ...(floor && {
        noSessions: floor,
        sessionLayerCpuUsPerRequest: {
          scale: ours.serverCpuUsPerRequest - floor.serverCpuUsPerRequest,
          expressSession: anchor.serverCpuUsPerRequest - floor.serverCpuUsPerRequest,
        },
      }),
      throughputRatio,
      p99Ratio,
    }
    const rows: [string, Figures][] = [
      ['@scale/sessions', ours],
      ['express-session + connect-redis', anchor],
    ]
    if (floor) rows.push(['(no sessions: the floor)', floor])
    for (const [label, f] of rows) {
      const row = [
        scenario.label,
        label,
        f.rps,
        f.p50Ms,
        f.p99Ms,
        f.serverCpuUsPerRequest,
        f.redisCommandsPerRequest,
        f.errors,
      ]
      console.log(`| ${row.join(' | ')} |`)
    }
    console.log(
      `| ${scenario.label} | **ratio ours/anchor** | **${throughputRatio}×** | | ${p99Ratio}× | ${cpuRatio}× | | |`,
    )
  }
  console.log('')
  console.log(
    `${CONNECTIONS} keep-alive connections over ${SESSIONS} sessions; ${WARMUP_S} s warm-up per server, ` +
      `then ${ROUNDS} interleaved rounds of ${MEASURE_S} s per side and scenario. Redis commands are counted ` +
      'server-side and include those run inside scripts (a field write, anonymous or logged in, is one HSET; ' +
      'the throttled touch is one script).',
  )
  for (const [label, result] of Object.entries(results)) {
    const layer = result.sessionLayerCpuUsPerRequest
    if (layer) {
      console.log(
        `${label}: session layer CPU per request (server CPU minus the floor's): @scale/sessions ${layer.scale} µs, ` +
          `express-session + connect-redis ${layer.expressSession} µs`,
      )
    }
  }
  const outage = { breaker: await redisDownPhase(true), noBreaker: await redisDownPhase(false) }
  console.log(
    `Redis killed, node:http, after the breaker opened: p50 ${outage.breaker.p50Ms} ms, p99 ${outage.breaker.p99Ms} ms ` +
      `over ${outage.breaker.requests} requests (${outage.breaker.share503 * 100} % answered 503); without the breaker: ` +
      `p50 ${outage.noBreaker.p50Ms} ms, p99 ${outage.noBreaker.p99Ms} ms over ${outage.noBreaker.requests} requests.`,
  )
  const headline = results['express, read+write'] as (typeof results)[string]
  /** The goals: session-layer CPU ≤ 0.5× express-session's, ≤ 2 Redis commands per read+write. */
  const layerRatio = (label: string) => {
    const layer = results[label]?.sessionLayerCpuUsPerRequest
    return layer ? Number((layer.scale / layer.expressSession).toFixed(2)) : undefined
  }
  const sessionLayerCpuRatio = {
    express: layerRatio('express, read+write'),
    node: layerRatio('node:http, read+write'),
  }
  const loggedInCommands = results['node:http, logged-in read+write']?.scale.redisCommandsPerRequest
  console.log(
    `Session-layer CPU ratio ours/express-session: Express ${sessionLayerCpuRatio.express}×, node:http ` +
      `${sessionLayerCpuRatio.node}× (goal ≤ 0.5×); Redis commands per logged-in read+write: ${loggedInCommands} (goal ≤ 2).`,
  )
  console.log(
    `BENCH ${JSON.stringify({
      package: '@scale/sessions',
      anchor: 'express-session@1.19 + connect-redis@9 (redis@5)',
      connections: CONNECTIONS,
      scenarios: results,
      redisDown: outage,
      redisDownP99UnderBreakerMs: outage.breaker.p99Ms,
      sessionLayerCpuRatio,
      loggedInRedisCommandsPerRequest: loggedInCommands,
      throughputRatio: headline.throughputRatio,
      p99Ratio: headline.p99Ratio,
      goalThroughputRatio: 1.5,
      metGoal: headline.throughputRatio >= 1.5,
    })}`,
  )
}

await main()
