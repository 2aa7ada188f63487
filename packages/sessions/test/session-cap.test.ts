import { describe, expect, it } from 'vitest'
import { SessionsOptionsError } from '../src/index.js'
import { makeSessions } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()

describe('maxSessionsPerUser', () => {
  it('a login beyond the cap ends the least recently used session of that user', async () => {
    const sessions = makeSessions(kit.redis, { maxSessionsPerUser: 2 })
    const cookies: string[] = []
    for (let i = 0; i < 3; i++) {
      const session = await sessions.load({})
      await session.regenerate({ userId: 'cap' })
      cookies.push(((await sessions.commit(session)).setCookie as string).split(';')[0] as string)
      await new Promise((resolve) => setTimeout(resolve, 5)) // distinct last-seen times
    }
    expect(await sessions.listUserSessions('cap')).toHaveLength(2)
    const users = await Promise.all(cookies.map(async (cookie) => (await sessions.load({ cookie })).userId))
    expect(users).toEqual([undefined, 'cap', 'cap'])
  })

  it('rejects a cap below 1', () => {
    expect(() => makeSessions(kit.redis, { maxSessionsPerUser: 0 })).toThrow(SessionsOptionsError)
  })
})
