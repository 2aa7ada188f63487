import { describe, expect, it } from 'vitest'
import { addFlash, type Sessions, takeFlash } from '../src/index.js'
import type { Data } from './helpers/app-routes.js'
import { makeSessions } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()

async function request(
  sessions: Sessions<Data>,
  cookie: string | undefined,
  act: (s: Awaited<ReturnType<Sessions<Data>['load']>>) => unknown,
) {
  const session = await sessions.load(cookie === undefined ? {} : { cookie })
  const result = act(session)
  const { setCookie } = await sessions.commit(session)
  return { result, cookie: setCookie ? (setCookie.split(';')[0] as string) : cookie }
}

describe('flash messages', () => {
  it('are shown once, on the next request, per type, in order', async () => {
    const sessions = makeSessions(kit.redis)
    const first = await request(sessions, undefined, (s) => {
      addFlash(s, 'error', 'Wrong password')
      addFlash(s, 'error', 'Try again')
      addFlash(s, 'info', 'Welcome')
    })
    const second = await request(sessions, first.cookie, (s) => takeFlash(s, 'error'))
    expect(second.result).toEqual(['Wrong password', 'Try again'])
    const third = await request(sessions, second.cookie, (s) => [takeFlash(s, 'error'), takeFlash(s, 'info')])
    expect(third.result).toEqual([[], ['Welcome']])
    const fourth = await request(sessions, third.cookie, (s) => s.toJSON())
    expect(fourth.result).toEqual({})
  })
})
