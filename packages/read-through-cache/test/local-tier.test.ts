import { describe, expect, it } from 'vitest'
import { CircuitBreaker } from '../src/circuit-breaker.js'
import { decodeEnvelope, encodeEnvelope } from '../src/envelope.js'
import { type LocalEntry, LocalTier } from '../src/local-tier.js'
import { Semaphore } from '../src/semaphore.js'
import { jsonSerializer, typedJsonSerializer } from '../src/serializer.js'

const entry = (value: string, size = value.length): LocalEntry => ({
  value,
  negative: false,
  freshUntil: Number.MAX_SAFE_INTEGER,
  staleUntil: Number.MAX_SAFE_INTEGER,
  size,
})

describe('local tier (LRU)', () => {
  it('evicts the least recently used entry beyond maxEntries; a read refreshes recency', () => {
    const tier = new LocalTier({ maxEntries: 2, maxBytes: 1_000 })
    tier.set('a', entry('a'))
    tier.set('b', entry('b'))
    tier.get('a', 0)
    tier.set('c', entry('c'))
    expect([tier.peek('a'), tier.peek('b'), tier.peek('c')].map(Boolean)).toEqual([true, false, true])
    expect(tier.evictions).toBe(1)
  })

  it('evicts by bytes, keeps the byte count exact, and refuses an entry larger than the budget', () => {
    const tier = new LocalTier({ maxEntries: 100, maxBytes: 10 })
    tier.set('a', entry('a', 4))
    tier.set('b', entry('b', 4))
    tier.set('c', entry('c', 4))
    expect(tier.peek('a')).toBeUndefined()
    expect(tier.bytes).toBe(8)
    tier.set('b', entry('b', 2))
    expect(tier.bytes).toBe(6)
    tier.set('huge', entry('huge', 11))
    expect(tier.peek('huge')).toBeUndefined()
    expect(tier.bytes).toBe(6)
    tier.delete('b')
    expect(tier.bytes).toBe(4)
  })

  it('drops an entry once past staleUntil', () => {
    const tier = new LocalTier({ maxEntries: 10, maxBytes: 100 })
    tier.set('a', { ...entry('a'), freshUntil: 10, staleUntil: 20 })
    expect(tier.get('a', 15)?.value).toBe('a')
    expect(tier.get('a', 20)).toBeUndefined()
    expect(tier.size).toBe(0)
  })
})

describe('circuit breaker', () => {
  it('opens after the threshold, lets one probe through after the open period, closes only on the probe', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 2, openDurationMs: 100 })
    breaker.failure(0, false)
    expect(breaker.state).toBe('closed')
    breaker.failure(0, false)
    expect(breaker.state).toBe('open')
    expect(breaker.permit(50)).toBe('reject')
    breaker.success(false) // a late answer to an old command does not close it
    expect(breaker.state).toBe('open')
    expect(breaker.permit(100)).toBe('probe')
    expect(breaker.permit(100)).toBe('reject') // only one probe at a time
    breaker.failure(100, true)
    expect(breaker.state).toBe('open')
    expect(breaker.permit(200)).toBe('probe')
    breaker.success(true)
    expect(breaker.state).toBe('closed')
    expect(breaker.timesOpened).toBe(2)
  })
})

describe('envelope and semaphore', () => {
  it('round-trips an envelope and rejects foreign text', () => {
    const text = encodeEnvelope({ freshUntil: 5, staleUntil: 9, negative: false, payload: '{"a":"|x"}' })
    expect(decodeEnvelope(text)).toEqual({
      freshUntil: 5,
      staleUntil: 9,
      negative: false,
      payload: '{"a":"|x"}',
    })
    expect(decodeEnvelope('hello')).toBeUndefined()
    expect(decodeEnvelope('1|2|zpayload')).toBeUndefined()
  })

  it('never runs more than its limit at once', async () => {
    const semaphore = new Semaphore(3)
    let active = 0
    let peak = 0
    await Promise.all(
      Array.from({ length: 50 }, () =>
        semaphore.run(async () => {
          active++
          peak = Math.max(peak, active)
          await new Promise((r) => setTimeout(r, 1))
          active--
        }),
      ),
    )
    expect(peak).toBe(3)
    expect(semaphore.peak).toBe(3)
  })
})

describe('default serializer (typed JSON)', () => {
  const roundTrip = (value: unknown) => typedJsonSerializer.deserialize(typedJsonSerializer.serialize(value))

  it('keeps Date, Map, Set and BigInt, nested anywhere', () => {
    const value = {
      at: new Date('2024-01-02T03:04:05.000Z'),
      invalid: new Date(Number.NaN),
      byId: new Map<unknown, unknown>([
        [1, { tags: new Set(['a', 'b']) }],
        ['k', [10n, new Date(0)]],
      ]),
      big: 2n ** 70n,
      plain: { n: 1, s: 'x', list: [1, null, 'y'] },
    }
    const back = roundTrip(value) as typeof value
    expect(back).toEqual(value)
    expect(back.at).toBeInstanceOf(Date)
    expect(Number.isNaN(back.invalid.getTime())).toBe(true)
    expect(back.byId).toBeInstanceOf(Map)
    expect((back.byId.get(1) as { tags: Set<string> }).tags).toBeInstanceOf(Set)
    expect(back.big).toBe(2n ** 70n)
  })

  it('writes plain JSON for plain values (readable by JSON.parse), and reads what jsonSerializer wrote', () => {
    const value = { id: 1, name: 'Ada', roles: ['admin'] }
    expect(typedJsonSerializer.serialize(value)).toBe(JSON.stringify(value))
    expect(typedJsonSerializer.deserialize(jsonSerializer.serialize(value))).toEqual(value)
    expect(roundTrip('~tilde first')).toBe('~tilde first')
  })

  it('an object that has the tag key itself is not mistaken for a tagged value', () => {
    const value = { '\u0000t': 'D', v: 5, when: new Date(7) }
    expect(roundTrip(value)).toEqual(value)
    expect(roundTrip({ nested: { '\u0000t': 'M', v: [] } })).toEqual({ nested: { '\u0000t': 'M', v: [] } })
  })
})
