import { createServer } from 'node:net'
import { TestkitError } from './errors.js'

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)))
  })
}

// Ports handed out by this process; the OS may hand the same ephemeral port out twice before a
// server binds it, so we never reuse one ourselves.
const handedOut = new Set<number>()

/**
 * A free loopback TCP port, never one of the standard service ports.
 * `alsoFree` offsets must be free too (Redis Cluster needs port + 10000 for its bus).
 */
export async function freePort(alsoFree: number[] = []): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    // 20000–49999: below Linux's ephemeral range (32768+ overlaps, so we probe) and + 10000 stays valid.
    const port = 20_000 + Math.floor(Math.random() * 30_000)
    if (handedOut.has(port)) continue
    const candidates = [port, ...alsoFree.map((offset) => port + offset)]
    const results = await Promise.all(candidates.map(isFree))
    if (results.every(Boolean)) {
      handedOut.add(port)
      return port
    }
  }
  throw new TestkitError('E_TESTKIT_NO_FREE_PORT', 'no free loopback port found after 200 attempts')
}
