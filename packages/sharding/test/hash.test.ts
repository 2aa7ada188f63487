import { describe, expect, it } from 'vitest'
import { hashKey } from '../src/hash.js'
import { createShardMap, InvalidShardKeyError, ShardKeyMissingError, ShardMap } from '../src/index.js'
import { canonicalKey } from '../src/shard-key.js'

describe('key hash and canonical keys', () => {
  it('is pinned by test vectors (a change here would move every stored row)', () => {
    expect(
      ['', 'a', '1', '42', 'user:1', 'héllo', '😀', '18446744073709551616'].map((key) => hashKey(key)),
    ).toEqual(PINNED)
  })

  it('routes a number, a bigint and its digits as one key', () => {
    expect(canonicalKey(42)).toBe('42')
    expect(canonicalKey(42n)).toBe('42')
    expect(canonicalKey(-0)).toBe('0')
    const map = createShardMap({ shards: ['a', 'b', 'c'] })
    expect(map.bucketOf(123456789)).toBe(map.bucketOf(123456789n))
    expect(map.bucketOf(123456789)).toBe(map.bucketOf('123456789'))
  })

  it('refuses bad keys with typed errors', () => {
    const map = createShardMap({ shards: ['a'] })
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 1.5, '', {}, [], true, Symbol('k'), 2 ** 60]) {
      expect(() => map.bucketOf(bad)).toThrow(InvalidShardKeyError)
    }
    expect(() => map.bucketOf(undefined)).toThrow(ShardKeyMissingError)
    expect(() => map.bucketOf(null)).toThrow(ShardKeyMissingError)
    try {
      map.bucketOf(Number.NaN)
    } catch (error) {
      expect((error as InvalidShardKeyError).code).toBe('E_SHARD_INVALID_KEY')
    }
  })

  it('spreads sequential integer keys evenly over 1,024 buckets', () => {
    const map = createShardMap({ shards: ['a', 'b', 'c', 'd'] })
    const counts = new Array(1024).fill(0)
    for (let key = 1; key <= 200_000; key++) counts[map.bucketOf(key)]++
    const mean = 200_000 / 1024
    expect(Math.max(...counts)).toBeLessThan(mean * 1.35)
    expect(Math.min(...counts)).toBeGreaterThan(mean * 0.65)
  })

  it('modulo strategy is key % N', () => {
    const map = createShardMap({ shards: ['a', 'b', 'c', 'd'], strategy: 'modulo' })
    expect(map.shardOf(7)).toBe('d')
    expect(map.shardOf(8n)).toBe('a')
    expect(map.shardOf(-1)).toBe('d')
  })

  it('serializes and parses a map, and refuses a broken one', () => {
    const map = createShardMap({ shards: ['a', 'b'], hotKeys: [{ key: 'celebrity', shard: 'c' }] })
    const back = ShardMap.parse(map.serialize())
    expect(back.shardOf('celebrity')).toBe('c')
    expect(back.bucketOf('celebrity')).toBe(1024)
    expect(back.epoch).toBe(1)
    expect(() => ShardMap.parse('{')).toThrow(/invalid shard map/)
    expect(() => ShardMap.parse({ ...map.data, buckets: ['a'] })).toThrow(/buckets must list/)
    expect(map.withBucketOn(3, 'c').epoch).toBe(2)
  })
})

const PINNED = [2872998923, 444641715, 1428125071, 686566589, 1763983599, 4198468525, 855877642, 2021849038]

describe('hashKey', () => {
  it('hashes the UTF-8 bytes TextEncoder produces, for every kind of character', async () => {
    const { hashKey: hash } = await import('../src/hash.js')
    const reference = (text: string) => {
      let h = 0x811c9dc5
      for (const byte of new TextEncoder().encode(text)) h = Math.imul(h ^ byte, 0x01000193)
      h >>>= 0
      h ^= h >>> 16
      h = Math.imul(h, 0x85ebca6b)
      h ^= h >>> 13
      h = Math.imul(h, 0xc2b2ae35)
      h ^= h >>> 16
      return h >>> 0
    }
    for (const text of [
      'a',
      'ß',
      '€',
      '😀',
      'a😀b',
      '\ud800',
      'x\udc00y',
      '日本語',
      '\u007f\u0080\u07ff\u0800\uffff',
    ]) {
      expect(hash(text)).toBe(reference(text))
    }
  })
})
