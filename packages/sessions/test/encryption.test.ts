import { describe, expect, it } from 'vitest'
import { SessionDataUnreadableError, SessionsOptionsError } from '../src/index.js'
import { makeSessions, randomPrefix } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()

const OLD = 'old-key-0123456789-0123456789-0123456789'
const NEW = 'new-key-0123456789-0123456789-0123456789'

async function dump(keyPrefix: string): Promise<string> {
  const keys = await kit.redis.keys(`${keyPrefix}*:s:*`)
  const hashes = await Promise.all(keys.map((key) => kit.redis.hgetall(key)))
  return JSON.stringify(hashes)
}

describe('encryption at rest', () => {
  it('Redis holds no session data in clear; reads, writes and rotations work; key rotation keeps sessions', async () => {
    const keyPrefix = randomPrefix()
    const errors: Error[] = []
    const onError = (error: Error) => errors.push(error)
    const v1 = makeSessions(kit.redis, { keyPrefix, encryption: { keys: [OLD] }, onError })
    const login = await v1.load({})
    await login.regenerate({ userId: 'enc' })
    login.set('card', 'visa-4111-1111')
    const cookie = ((await v1.commit(login)).setCookie as string).split(';')[0] as string
    expect(await dump(keyPrefix)).not.toContain('visa')

    // A new key prepended: old values still read; a write re-encrypts the field it changes.
    const v2 = makeSessions(kit.redis, { keyPrefix, encryption: { keys: [NEW, OLD] }, onError })
    const next = await v2.load({ cookie })
    expect(next.get('card')).toBe('visa-4111-1111')
    next.set('theme', 'dark')
    await next.regenerate({ keepData: true }) // the rotated copy is re-encrypted for its new ID
    const rotated = ((await v2.commit(next)).setCookie as string).split(';')[0] as string
    expect(await dump(keyPrefix)).not.toMatch(/visa|dark/)

    // The old key retired: everything was rewritten with the new one by the rotation.
    const v3 = makeSessions(kit.redis, { keyPrefix, encryption: { keys: [NEW] }, onError })
    expect((await v3.load({ cookie: rotated })).toJSON()).toEqual({ card: 'visa-4111-1111', theme: 'dark' })
    expect(errors).toEqual([])
  })

  it('a value moved to another session, tampered, or under an unknown key reads as absent and is reported', async () => {
    const keyPrefix = randomPrefix()
    const errors: Error[] = []
    const sessions = makeSessions(kit.redis, {
      keyPrefix,
      encryption: { keys: [NEW] },
      onError: (e) => errors.push(e),
    })
    const cookies: string[] = []
    for (const value of ['mine', 'theirs']) {
      const s = await sessions.load({})
      s.set('secret', value)
      cookies.push(((await sessions.commit(s)).setCookie as string).split(';')[0] as string)
    }
    const [mine, theirs] = (await Promise.all(cookies.map((cookie) => sessions.load({ cookie })))).map(
      (s) => s.handle,
    )
    const keyOf = async (handle: string | undefined) =>
      (await kit.redis.keys(`${keyPrefix}*:s:${handle}`))[0] as string
    const theirValue = await kit.redis.hget(await keyOf(theirs), 'd:secret')
    await kit.redis.hset(await keyOf(mine), 'd:secret', theirValue as string)
    expect((await sessions.load({ cookie: cookies[0] as string })).get('secret')).toBeUndefined()
    await kit.redis.hset(await keyOf(theirs), 'd:secret', `${theirValue?.slice(0, -4)}AAAA`)
    expect((await sessions.load({ cookie: cookies[1] as string })).get('secret')).toBeUndefined()
    const unknownKey = makeSessions(kit.redis, {
      keyPrefix,
      encryption: { keys: [OLD] },
      onError: (e) => errors.push(e),
    })
    await unknownKey.load({ cookie: cookies[1] as string })
    expect(errors.length).toBe(3)
    expect(errors.every((error) => error instanceof SessionDataUnreadableError)).toBe(true)
  })

  it('refuses short or missing keys', () => {
    expect(() => makeSessions(kit.redis, { encryption: { keys: [] } })).toThrow(SessionsOptionsError)
    expect(() => makeSessions(kit.redis, { encryption: { keys: ['short'] } })).toThrow(SessionsOptionsError)
  })
})
