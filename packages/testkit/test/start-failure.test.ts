import { describe, expect, it } from 'vitest'
import { ServerStartError, startRedis } from '../src/index.js'

describe('a server that cannot start', () => {
  it('fails fast with its own log, after one retry on fresh ports', async () => {
    const started = Date.now()
    const error = await startRedis({ args: ['--no-such-directive', 'x'] }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ServerStartError)
    const startError = error as ServerStartError
    // redis-server's own words about the bad directive reach the test output.
    expect(startError.log).toMatch(/no-such-directive/i)
    // Both tries failed, and the first one's words are kept.
    expect(startError.message).toMatch(/second try on fresh ports; the first failed too/)
    // Not the 30 s PING wait: the exit is noticed at once (generous bound for a busy machine).
    expect(Date.now() - started).toBeLessThan(20_000)
  })
})
