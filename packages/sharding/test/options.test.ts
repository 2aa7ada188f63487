import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import {
  createGlobalIds,
  createShardedKysely,
  createShardMap,
  createShardMover,
  fileMapStore,
  ShardingOptionsError,
} from '../src/index.js'

// A Kysely that is never queried: factories must refuse bad options before any connection.
const idle = () => new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ max: 1 }) }) })

describe('options are checked by the factories', () => {
  it('createShardedKysely', async () => {
    const map = createShardMap({ shards: ['a'] })
    const cases: Array<[unknown, string]> = [
      [{ shards: {}, map }, 'shards'],
      [{ shards: { a: {} }, map }, 'shards'],
      [{ shards: { a: idle() } }, 'map'],
      [{ shards: { a: idle() }, map, refreshIntervalMs: -1 }, 'refreshIntervalMs'],
      [{ shards: { a: idle() }, map, staleRetryMs: Number.NaN }, 'staleRetryMs'],
      [{ shards: { a: idle() }, map, compareText: 'C' }, 'compareText'],
    ]
    for (const [options, option] of cases) {
      const error = await createShardedKysely(options as never).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(ShardingOptionsError)
      expect((error as ShardingOptionsError).context.option).toBe(option)
      expect((error as ShardingOptionsError).code).toBe('E_SHARD_INVALID_OPTIONS')
    }
  })

  it('createGlobalIds and createShardMover', () => {
    const map = createShardMap({ shards: ['a'] })
    expect(() => createGlobalIds({ db: {} as never, map })).toThrow(ShardingOptionsError)
    expect(() => createGlobalIds({ db: idle(), map, reserveMs: 0 })).toThrow(ShardingOptionsError)
    const store = fileMapStore('/nonexistent/map.json')
    expect(() => createShardMover({ control: idle(), store, shards: { a: idle() }, tables: [] })).toThrow(
      ShardingOptionsError,
    )
    expect(() =>
      createShardMover({
        control: idle(),
        store,
        shards: { a: idle() },
        tables: [{ name: 'photo; drop table x', shardKey: 'user_id', primaryKey: 'id' }],
      }),
    ).toThrow(/plain lower-case SQL identifier/)
  })
})
