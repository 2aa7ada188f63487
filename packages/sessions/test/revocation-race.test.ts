import { describe, expect, it } from 'vitest'
import {
  createMemorySessionStore,
  createSessions,
  type Session,
  type SessionStore,
  type Sessions,
} from '../src/index.js'
import { RedisSessionStore } from '../src/redis-session-store.js'
import type { Data } from './helpers/app-routes.js'
import { randomPrefix, SECRET } from './helpers/setup.js'
import { useRedis } from './helpers/use-redis.js'

const kit = useRedis()

/**
 * The control: the same store with the lineage check taken out, as the package behaved before
 * (a rotation deletes the old record, then creates the new one unconditionally).
 */
class UncheckedRotationStore implements SessionStore {
  readonly #inner: SessionStore
  constructor(inner: SessionStore) {
    this.#inner = inner
  }
  userTag: SessionStore['userTag'] = (userId) => this.#inner.userTag(userId)
  read: SessionStore['read'] = (at) => this.#inner.read(at)
  update: SessionStore['update'] = (...args) => this.#inner.update(...args)
  destroy: SessionStore['destroy'] = (at, userId) => this.#inner.destroy(at, userId)
  listUser: SessionStore['listUser'] = (userId) => this.#inner.listUser(userId)
  destroyUser: SessionStore['destroyUser'] = (...args) => this.#inner.destroyUser(...args)
  create: SessionStore['create'] = async ({ replaces, ...record }) => {
    if (replaces) await this.#inner.destroy(replaces, record.userId)
    return this.#inner.create(record)
  }
}

/** mulberry32: a seeded PRNG, so every run replays the same 1,000 schedules. */
function prng(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

type Actor = 'A' | 'B' | 'L' | 'W' | 'R'
type RevocationKind = 'destroyAll' | 'destroyUserSession' | 'logoutInOtherTab'
const KINDS: RevocationKind[] = ['destroyAll', 'destroyUserSession', 'logoutInOtherTab']

/** A random merge of A, B, L, W (three steps each) and R (one step), all from one seed. */
function schedule(random: () => number): Actor[] {
  const left: Record<Actor, number> = { A: 3, B: 3, L: 3, W: 3, R: 1 }
  const order: Actor[] = []
  while (order.length < 13) {
    const open = (Object.keys(left) as Actor[]).filter((actor) => left[actor] > 0)
    const actor = open[Math.floor(random() * open.length)] as Actor
    left[actor]--
    order.push(actor)
  }
  return order
}

const cookieValueOf = (setCookie: string | undefined) => {
  const value = setCookie?.split(';')[0]?.split('=').slice(1).join('=')
  return value === '' ? undefined : value
}

/**
 * One trial: user logged in as S0. A and B are requests of S0 that rotate it (the README's
 * periodic `regenerate({ keepData: true })`), L is a fresh login of the same user, W is a request
 * of S0 that only writes a field (one plain HSET, no script), R revokes S0 (or all of the user's
 * sessions). Steps run one at a time in the scheduled order.
 * Returns how many sessions that the revocation should have ended are alive at the end.
 */
async function trial(sessions: Sessions<Data>, user: string, order: Actor[], kind: RevocationKind) {
  const cookieHeader = (value: string | undefined) =>
    value === undefined ? undefined : `${sessions.cookieName}=${value}`
  const login = await sessions.load({})
  await login.regenerate({ userId: user })
  login.set('cart', ['book'])
  const c0 = cookieValueOf((await sessions.commit(login)).setCookie)
  const h0 = login.handle

  interface Request {
    steps: number
    session?: Session<Data>
    issued?: string | undefined
    committedBeforeRevocation: boolean
  }
  const requests: Record<'A' | 'B' | 'L' | 'W', Request> = {
    A: { steps: 0, committedBeforeRevocation: false },
    B: { steps: 0, committedBeforeRevocation: false },
    L: { steps: 0, committedBeforeRevocation: false },
    W: { steps: 0, committedBeforeRevocation: false },
  }
  let revoked = false
  for (const actor of order) {
    if (actor === 'R') {
      revoked = true
      if (kind === 'destroyAll') await sessions.destroyAllUserSessions(user)
      else if (kind === 'destroyUserSession') await sessions.destroyUserSession(user, h0)
      else {
        const tab = await sessions.load({ cookie: cookieHeader(c0) })
        await tab.destroy()
        await sessions.commit(tab)
      }
      continue
    }
    const request = requests[actor]
    const step = request.steps++
    if (step === 0) {
      request.session = await sessions.load(actor === 'L' ? {} : { cookie: cookieHeader(c0) })
    } else if (step === 1) {
      const session = request.session as Session<Data>
      if (actor === 'W') session.set('cart', ['book', 'pen'])
      else await session.regenerate(actor === 'L' ? { userId: user } : { keepData: true })
    } else {
      request.issued = cookieValueOf((await sessions.commit(request.session as Session<Data>)).setCookie)
      request.committedBeforeRevocation = !revoked
    }
  }

  const authenticates = async (value: string | undefined) =>
    value !== undefined && (await sessions.load({ cookie: cookieHeader(value) })).userId === user
  let resurrected = 0
  // S0 itself, whatever W wrote to it before or after the revocation.
  if (await authenticates(c0)) resurrected++
  for (const actor of ['A', 'B'] as const) {
    const request = requests[actor]
    // A rotation that finished before a single-session revocation is a different session by
    // then; every other rotation descends from a revoked session and must be dead.
    const mustBeDead = !request.committedBeforeRevocation || kind === 'destroyAll'
    if (mustBeDead && (await authenticates(request.issued))) resurrected++
  }
  // A login that completed before "log out everywhere" must be ended by it. (A login completing
  // after it is a new authentication, not a resurrection.)
  const l = requests.L
  if (kind === 'destroyAll' && l.committedBeforeRevocation && (await authenticates(l.issued))) resurrected++
  return resurrected
}

async function runTrials(
  makeSessions: () => Sessions<Data>,
): Promise<{ trials: number; resurrected: number }> {
  const random = prng(14)
  const sessions = makeSessions()
  let resurrected = 0
  const trials = 1000
  for (let i = 0; i < trials; i++) {
    resurrected += await trial(
      sessions,
      `user-${i}`,
      schedule(random),
      KINDS[i % KINDS.length] as RevocationKind,
    )
  }
  return { trials, resurrected }
}

describe('revocation wins over requests in flight', () => {
  it('0 revoked sessions come back over 1,000 deterministic interleavings of rotations, a login, a field write and a revocation', async () => {
    const result = await runTrials(() =>
      createSessions<Data>({ redis: kit.redis, secrets: [SECRET], keyPrefix: randomPrefix() }),
    )
    expect(result).toEqual({ trials: 1000, resurrected: 0 })
  }, 120_000)

  it('the memory store holds the same line over the same 1,000 schedules', async () => {
    const result = await runTrials(() =>
      createSessions<Data>({ store: createMemorySessionStore(), secrets: [SECRET] }),
    )
    expect(result).toEqual({ trials: 1000, resurrected: 0 })
  }, 120_000)

  it('control: without the atomic lineage check the same schedules resurrect revoked users', async () => {
    const result = await runTrials(() => {
      const keyPrefix = randomPrefix()
      const store = new UncheckedRotationStore(
        new RedisSessionStore({
          redis: kit.redis,
          keyPrefix,
          commandTimeoutMs: 2_000,
          absoluteTimeoutMs: 86_400_000,
          coalesceWrites: true,
          circuitBreaker: false,
        }),
      )
      return createSessions<Data>({ store, secrets: [SECRET], keyPrefix })
    })
    expect(result.trials).toBe(1000)
    expect(result.resurrected).toBeGreaterThan(0)
  }, 120_000)

  it('"log out all other devices" keeps the calling session usable, even for its own request in flight', async () => {
    const sessions = createSessions<Data>({ redis: kit.redis, secrets: [SECRET], keyPrefix: randomPrefix() })
    const cookieOf = async (user: string) => {
      const session = await sessions.load({})
      await session.regenerate({ userId: user })
      return `${sessions.cookieName}=${cookieValueOf((await sessions.commit(session)).setCookie)}`
    }
    const here = await cookieOf('zoe')
    const elsewhere = await cookieOf('zoe')
    const current = await sessions.load({ cookie: here })
    expect(await sessions.destroyAllUserSessions('zoe', { except: current.handle })).toBe(1)
    current.set('theme', 'dark')
    const { setCookie } = await sessions.commit(current)
    expect(setCookie).toBeUndefined()
    expect((await sessions.load({ cookie: here })).toJSON()).toEqual({ theme: 'dark' })
    expect((await sessions.load({ cookie: elsewhere })).userId).toBeUndefined()
  })

  it('two tabs rotating one session at once: one rotation wins, the other sends no cookie (no logout)', async () => {
    const sessions = createSessions<Data>({ redis: kit.redis, secrets: [SECRET], keyPrefix: randomPrefix() })
    const login = await sessions.load({})
    await login.regenerate({ userId: 'yan' })
    const cookie = `${sessions.cookieName}=${cookieValueOf((await sessions.commit(login)).setCookie)}`
    const first = await sessions.load({ cookie })
    const second = await sessions.load({ cookie })
    await first.regenerate({ keepData: true })
    await second.regenerate({ keepData: true })
    const won = cookieValueOf((await sessions.commit(first)).setCookie)
    expect((await sessions.commit(second)).setCookie).toBeUndefined()
    expect((await sessions.load({ cookie: `${sessions.cookieName}=${won}` })).userId).toBe('yan')
    expect(await sessions.listUserSessions('yan')).toHaveLength(1)
  })

  it('an anonymous write (one plain HSET) to a session destroyed meanwhile leaves no stray hash', async () => {
    const keyPrefix = randomPrefix()
    const sessions = createSessions<Data>({ redis: kit.redis, secrets: [SECRET], keyPrefix })
    const first = await sessions.load({})
    first.set('cart', ['pen'])
    const cookie = `${sessions.cookieName}=${cookieValueOf((await sessions.commit(first)).setCookie)}`
    const slow = await sessions.load({ cookie })
    const login = await sessions.load({ cookie })
    await login.regenerate({ userId: 'ann' })
    await sessions.commit(login)
    slow.set('cart', ['pen', 'ink'])
    expect((await sessions.commit(slow)).setCookie).toMatch(/Max-Age=0/)
    expect(await kit.redis.keys(`${keyPrefix}*:s:${slow.handle}`)).toEqual([])
    expect((await sessions.load({ cookie })).toJSON()).toEqual({})
  })
})
