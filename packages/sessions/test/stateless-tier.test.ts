import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { type RedisServer, startRedis, waitFor } from '@scale/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CookieClient } from './helpers/http-client.js'
import { randomPrefix } from './helpers/setup.js'

const fixture = fileURLToPath(new URL('./fixtures/server-process.ts', import.meta.url))
let redisServer: RedisServer
const children: ChildProcess[] = []

function startProcess(keyPrefix: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, String(redisServer.port), keyPrefix], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /PORT (\d+)/.exec(out)
      if (match) resolve({ child, port: Number(match[1]) })
    })
    child.on('exit', (code) => reject(new Error(`server process exited with ${code}: ${stderr}`)))
  })
}

beforeAll(async () => {
  redisServer = await startRedis()
})

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    }
  }
  await redisServer.dispose()
})

describe('stateless web tier: two server processes behind one Redis', () => {
  it('a session made on one server is served by the other; both survive a Redis crash', async () => {
    const keyPrefix = randomPrefix()
    const [a, b] = await Promise.all([startProcess(keyPrefix), startProcess(keyPrefix)])
    expect(a.port).not.toBe(b.port)
    const client = new CookieClient(a.port, '__Host-sid')

    await client.send('POST', '/login?user=nora')
    client.port = b.port
    expect((await client.send('GET', '/me')).json().user).toBe('nora')
    await client.send('POST', '/set?k=step&v=on-b')
    client.port = a.port
    expect((await client.send('GET', '/me')).json()).toMatchObject({ user: 'nora', data: { step: 'on-b' } })

    // Alternate like a round-robin balancer.
    for (let i = 0; i < 10; i++) {
      client.port = i % 2 === 0 ? a.port : b.port
      await client.send('POST', `/set?k=n${i}&v=${i}`)
    }
    client.port = b.port
    expect(Object.keys((await client.send('GET', '/me')).json().data)).toHaveLength(11)

    // Logout on A is logout everywhere.
    const cookie = client.cookie
    client.port = a.port
    await client.send('POST', '/logout')
    client.port = b.port
    client.cookie = cookie
    expect((await client.send('GET', '/me')).json().user).toBeNull()

    // Redis crashes: both processes answer 503 and keep running; both recover.
    await client.send('POST', '/login?user=nora')
    await redisServer.kill()
    for (const server of [a, b]) {
      client.port = server.port
      expect((await client.send('GET', '/me')).status).toBe(503)
    }
    await redisServer.start()
    for (const server of [a, b]) {
      client.port = server.port
      await waitFor('recovery', async () => (await client.send('GET', '/me')).status === 200, {
        timeoutMs: 30_000,
        intervalMs: 200,
      })
    }
    expect(a.child.exitCode).toBeNull()
    expect(b.child.exitCode).toBeNull()
    await client.send('POST', '/login?user=nora')
    client.port = a.port
    expect((await client.send('GET', '/me')).json().user).toBe('nora')
  })
})
