import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { META } from './redis-keys.js'
import { newSessionId, storageIdOf } from './session-id.js'
import type { SessionLocation, SessionStore } from './session-store.js'

export { tagForUser } from './session-id.js'

/** The test functions of your runner (vitest, jest, node:test, mocha all fit). */
export interface ConformanceHarness {
  describe: (name: string, body: () => void) => void
  it: (name: string, body: () => Promise<void>, timeoutMs?: number) => void
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function anonymousAt(): SessionLocation {
  return { tag: randomBytes(6).toString('base64url').slice(0, 6), storageId: storageIdOf(newSessionId()) }
}

function userAt(store: SessionStore, userId: string): SessionLocation {
  return { tag: store.userTag(userId), storageId: storageIdOf(newSessionId()) }
}

function meta(userId?: string): string[] {
  const now = Date.now()
  const fields = [
    META.createdAt,
    String(now),
    META.expiresAt,
    String(now + 60_000),
    META.touchedAt,
    String(now),
  ]
  if (userId !== undefined) fields.push(META.userId, userId)
  return fields
}

const TTL = 60_000

/**
 * The behaviour every {@link SessionStore} must show, as one suite your test runner runs:
 * reads, creates, field-by-field updates, rotations that a revocation beats, per-user listing
 * and destruction, expiry. The Redis store and the memory store run it in this package's tests.
 *
 * @example
 * ```ts
 * import { describe, it } from 'vitest'
 * import { describeSessionStoreConformance } from '@scale/sessions/testing'
 * describeSessionStoreConformance('my store', () => createMyStore(), { describe, it })
 * ```
 */
export function describeSessionStoreConformance(
  name: string,
  makeStore: () => SessionStore | Promise<SessionStore>,
  { describe, it }: ConformanceHarness,
): void {
  const uniqueUser = () => `user-${randomBytes(6).toString('hex')}`

  describe(`SessionStore conformance: ${name}`, () => {
    it('creates and reads a record; a missing record reads as empty; no overwrite', async () => {
      const store = await makeStore()
      const at = anonymousAt()
      assert.deepEqual(await store.read(at), {})
      const fields = [...meta(), 'd:cart', '["book"]']
      const record = { location: at, userId: undefined, ttlMs: TTL, lifetimeMs: TTL, fields }
      assert.equal(await store.create(record), 'created')
      const read = await store.read(at)
      assert.equal(read['d:cart'], '["book"]')
      assert.equal(read[META.createdAt], fields[1])
      assert.equal(await store.create({ ...record, fields: [...meta(), 'd:cart', '[]'] }), 'collision')
      assert.equal((await store.read(at))['d:cart'], '["book"]')
    })

    it('updates only the named fields, so concurrent writers of different fields both win', async () => {
      const store = await makeStore()
      const at = anonymousAt()
      await store.create({
        location: at,
        userId: undefined,
        ttlMs: TTL,
        lifetimeMs: TTL,
        fields: [...meta(), 'd:a', '1'],
      })
      const writes = await Promise.all([
        store.update(at, undefined, 0, ['d:b', '2'], []),
        store.update(at, undefined, 0, ['d:c', '3'], ['d:a']),
      ])
      assert.deepEqual(writes, [true, true])
      const read = await store.read(at)
      assert.equal(read['d:a'], undefined)
      assert.equal(read['d:b'], '2')
      assert.equal(read['d:c'], '3')
    })

    it('never writes to a destroyed or missing record (no resurrection)', async () => {
      const store = await makeStore()
      const at = userAt(store, uniqueUser())
      assert.equal(await store.update(at, undefined, TTL, ['d:x', '1'], []), false)
      assert.deepEqual(await store.read(at), {})
      const userId = uniqueUser()
      const mine = userAt(store, userId)
      await store.create({ location: mine, userId, ttlMs: TTL, lifetimeMs: TTL, fields: meta(userId) })
      assert.equal(await store.destroy(mine, userId), true)
      assert.equal(await store.destroy(mine, userId), false)
      assert.equal(await store.update(mine, userId, TTL, ['d:x', '1'], []), false)
      assert.deepEqual(await store.read(mine), {})
    })

    it('rotates atomically, and refuses to rotate a session that was ended or revoked meanwhile', async () => {
      const store = await makeStore()
      const userId = uniqueUser()
      const first = userAt(store, userId)
      await store.create({ location: first, userId, ttlMs: TTL, lifetimeMs: TTL, fields: meta(userId) })
      const second = userAt(store, userId)
      const rotation = { userId, ttlMs: TTL, lifetimeMs: TTL, fields: [...meta(userId), 'd:k', '1'] }
      assert.equal(await store.create({ ...rotation, location: second, replaces: first }), 'created')
      assert.deepEqual(await store.read(first), {})
      assert.equal((await store.read(second))['d:k'], '1')
      // A second request still holding `first` rotates too late: refused, nothing created.
      const late = userAt(store, userId)
      assert.equal(await store.create({ ...rotation, location: late, replaces: first }), 'revoked')
      assert.deepEqual(await store.read(late), {})
      // Log out everywhere, then a rotation of a session loaded before it: refused.
      assert.equal(await store.destroyUser(userId, undefined, undefined), 1)
      const afterRevocation = userAt(store, userId)
      assert.equal(
        await store.create({ ...rotation, location: afterRevocation, replaces: second }),
        'revoked',
      )
      assert.deepEqual(await store.read(afterRevocation), {})
      assert.deepEqual(await store.listUser(userId), [])
    })

    it('lists a user’s live sessions with their metadata; ends one, or all but one', async () => {
      const store = await makeStore()
      const userId = uniqueUser()
      const locations = [userAt(store, userId), userAt(store, userId), userAt(store, userId)]
      for (const location of locations) {
        await store.create({
          location,
          userId,
          ttlMs: TTL,
          lifetimeMs: TTL,
          fields: [...meta(userId), META.userAgent, 'agent'],
        })
      }
      const listed = await store.listUser(userId)
      assert.equal(listed.length, 3)
      assert.deepEqual(new Set(listed.map((s) => s.handle)), new Set(locations.map((l) => l.storageId)))
      assert.equal(listed[0]?.userAgent, 'agent')
      assert.ok(listed[0]?.createdAt instanceof Date)
      const [a, b, c] = locations as [SessionLocation, SessionLocation, SessionLocation]
      // Another user's handle is not this user's to end.
      assert.equal(await store.destroyUser(uniqueUser(), [a.storageId], undefined), 0)
      assert.equal(await store.destroyUser(userId, [a.storageId], undefined), 1)
      assert.deepEqual(await store.read(a), {})
      assert.equal(await store.destroyUser(userId, undefined, c.storageId), 1)
      assert.deepEqual(await store.read(b), {})
      // The kept session still takes writes after the revocation.
      assert.equal(await store.update(c, userId, TTL, ['d:still', '1'], []), true)
      assert.deepEqual(
        (await store.listUser(userId)).map((s) => s.handle),
        [c.storageId],
      )
    })

    it('with a per-user cap, a new session ends the least recently used ones, never itself', async () => {
      const store = await makeStore()
      const userId = uniqueUser()
      const now = Date.now()
      const made: SessionLocation[] = []
      for (const [index, lastSeen] of [now - 3_000, now - 1_000, now - 2_000, now].entries()) {
        const location = userAt(store, userId)
        made.push(location)
        const fields = [...meta(userId), META.touchedAt, String(lastSeen)]
        const record = { location, userId, ttlMs: TTL, lifetimeMs: TTL, fields }
        // The first three without a cap, the fourth with a cap of 2.
        assert.equal(await store.create(index < 3 ? record : { ...record, maxSessionsPerUser: 2 }), 'created')
      }
      const handles = (await store.listUser(userId)).map((s) => s.handle).sort()
      assert.deepEqual(handles, [made[1]?.storageId, made[3]?.storageId].sort())
    })

    it('expires a record after its TTL; an update with a TTL extends it', async () => {
      const store = await makeStore()
      const short = anonymousAt()
      const extended = anonymousAt()
      for (const location of [short, extended]) {
        await store.create({ location, userId: undefined, ttlMs: 300, lifetimeMs: TTL, fields: meta() })
      }
      assert.equal(await store.update(extended, undefined, TTL, ['d:x', '1'], []), true)
      let gone = false
      for (let i = 0; i < 100 && !gone; i++) {
        await sleep(50)
        gone = (await store.read(short))[META.createdAt] === undefined
      }
      assert.equal(gone, true, 'the record outlived its TTL by 5 s')
      assert.equal((await store.read(extended))['d:x'], '1')
    }, 10_000)
  })
}
