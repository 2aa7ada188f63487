// pnpm bench: @scale/sessions vs express-session 1.19 + connect-redis 9 (node-redis), same server
// code and route (read + write one field per request), same Redis, one run, over real HTTP.
import { type ChildProcess, spawn } from 'node:child_process'
import { request } from 'node:http'
import { fileURLToPath } from 'node:url'
import { type RedisServer, startRedis } from '@scale/testkit'
import autocannon from 'autocannon'

const CONNECTIONS = 32
const SESSIONS = 64
const WARMUP_S = 2
const MEASURE_S = 6
const ROUNDS = 2
const SESSION_LIBS = ['scale', 'express-session'] as const
const FRAMEWORKS = ['express', 'node'] as const
type SessionLib = (typeof SESSION_LIBS)[number]
type Framework = (typeof FRAMEWORKS)[number]

const serverFile = fileURLToPath(new URL('./server.ts', import.meta.url))

interface Running {
  child: ChildProcess
  port: number
  cookies: string[]
}

function startServer(lib: SessionLib, framework: Framework, redisPort: number): Promise<Running> {
  const args = [
    '--import',
    'tsx',
    serverFile,
    lib,
    framework,
    String(redisPort),
    `bench-${lib}-${framework}:`,
  ]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /PORT (\d+)/.exec(out)
      if (match) resolve({ child, port: Number(match[1]), cookies: [] })
    })
    child.once('exit', (code) => reject(new Error(`${lib}/${framework} server exited with ${code}`)))
  })
}

/** One request without a cookie: returns the session cookie the server issues. */
function newSessionCookie(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/bench', agent: false }, (res) => {
      res.resume()
      const setCookie = res.headers['set-cookie']?.[0]
      if (!setCookie) reject(new Error('no session cookie issued'))
      else resolve(setCookie.split(';')[0] as string)
    })
    req.on('error', reject)
    req.end()
  })
}

/** Drives one server: every connection cycles through the pre-made sessions (keep-alive). */
function load(server: Running, seconds: number): Promise<autocannon.Result> {
  let next = 0
  return autocannon({
    url: `http://127.0.0.1:${server.port}`,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        method: 'GET',
        path: '/bench',
        setupRequest: (req) => {
          next = (next + 1) % server.cookies.length
          return { ...req, headers: { ...req.headers, cookie: server.cookies[next] as string } }
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

interface Figures {
  rps: number
  p50Ms: number
  p99Ms: number
  redisCommandsPerRequest: number
  errors: number
}

async function main(): Promise<void> {
  const redis = await startRedis()
  const servers = new Map<string, Running>()
  const totals = new Map<
    string,
    { requests: number; seconds: number; p50: number[]; p99: number[]; commands: number; errors: number }
  >()
  const name = (lib: SessionLib, framework: Framework) => `${lib}/${framework}`
  try {
    for (const framework of FRAMEWORKS) {
      for (const lib of SESSION_LIBS) {
        const server = await startServer(lib, framework, redis.port)
        for (let i = 0; i < SESSIONS; i++) server.cookies.push(await newSessionCookie(server.port))
        servers.set(name(lib, framework), server)
        totals.set(name(lib, framework), {
          requests: 0,
          seconds: 0,
          p50: [],
          p99: [],
          commands: 0,
          errors: 0,
        })
      }
    }
    // Alternate the order each round so neither side always runs on a warmer (or busier) machine.
    for (let round = 0; round < ROUNDS; round++) {
      for (const framework of FRAMEWORKS) {
        const libs = round % 2 === 0 ? SESSION_LIBS : [...SESSION_LIBS].reverse()
        for (const lib of libs) {
          const key = name(lib, framework)
          const server = servers.get(key) as Running
          await load(server, WARMUP_S)
          await redis.command('config', 'resetstat')
          const result = await load(server, MEASURE_S)
          const commands = await commandCount(redis)
          const total = totals.get(key) as NonNullable<ReturnType<typeof totals.get>>
          total.requests += result.requests.total
          total.seconds += result.duration
          total.p50.push(result.latency.p50)
          total.p99.push(result.latency.p99)
          total.commands += commands
          total.errors += result.errors + result.timeouts + result.non2xx
          console.log(
            `round ${round + 1}  ${key.padEnd(24)} ${(result.requests.total / result.duration).toFixed(0).padStart(6)} req/s  p99 ${result.latency.p99} ms`,
          )
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

  const figures = (key: string): Figures => {
    const t = totals.get(key) as NonNullable<ReturnType<typeof totals.get>>
    return {
      rps: Math.round(t.requests / t.seconds),
      p50Ms: Math.max(...t.p50),
      p99Ms: Math.max(...t.p99),
      redisCommandsPerRequest: Number((t.commands / t.requests).toFixed(2)),
      errors: t.errors,
    }
  }
  const results: Record<
    string,
    { scale: Figures; expressSession: Figures; throughputRatio: number; p99Ratio: number }
  > = {}
  console.log('')
  console.log('| server | session layer | req/s | p50 ms | p99 ms (worst round) | Redis cmds/req | errors |')
  console.log('|---|---|---:|---:|---:|---:|---:|')
  for (const framework of FRAMEWORKS) {
    const ours = figures(name('scale', framework))
    const anchor = figures(name('express-session', framework))
    const throughputRatio = Number((ours.rps / anchor.rps).toFixed(2))
    const p99Ratio = Number((ours.p99Ms / anchor.p99Ms).toFixed(2))
    results[framework] = { scale: ours, expressSession: anchor, throughputRatio, p99Ratio }
    for (const [label, f] of [
      ['@scale/sessions', ours],
      ['express-session + connect-redis', anchor],
    ] as const) {
      console.log(
        `| ${framework} | ${label} | ${f.rps} | ${f.p50Ms} | ${f.p99Ms} | ${f.redisCommandsPerRequest} | ${f.errors} |`,
      )
    }
    console.log(`| ${framework} | **ratio** | **${throughputRatio}×** | | ${p99Ratio}× | | |`)
  }
  console.log('')
  console.log(
    `${CONNECTIONS} keep-alive connections (autocannon) over ${SESSIONS} sessions; ${ROUNDS} alternating rounds of ${MEASURE_S} s after ${WARMUP_S} s warm-up each.`,
  )
  console.log(
    'Both stacks make 2 Redis round trips per request (read, then write). Redis commands are counted server-side and include the commands inside our scripts (EVALSHA = EVALSHA + EXISTS + HSET).',
  )
  const express = results.express as (typeof results)[string]
  console.log(
    `BENCH ${JSON.stringify({
      package: '@scale/sessions',
      anchor: 'express-session@1.19 + connect-redis@9 (redis@5)',
      route: 'read + write one field per request',
      connections: CONNECTIONS,
      express: results.express,
      node: results.node,
      throughputRatio: express.throughputRatio,
      goalThroughputRatio: 1.5,
      metGoal: express.throughputRatio >= 1.5,
    })}`,
  )
}

await main()
