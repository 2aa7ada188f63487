import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { usePostgresClusters } from '@scale/testkit/vitest'
import { type Generated, type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createGlobalIds,
  createShardedKysely,
  createShardMap,
  createShardMover,
  GlobalIdRangeError,
  GlobalIdStoreError,
  InvalidShardKeyError,
  integerShardKey,
  postgresMapStore,
  type ShardedKysely,
  ShardingOptionsError,
  ShardMapStaleError,
  ShardMoveError,
  ShardUnreachableError,
} from '../src/index.js'
import { createMover } from '../src/reshard/mover.js'
import { kysely, waitUntil } from './helpers.js'

const packageDir = fileURLToPath(new URL('..', import.meta.url))

// Findings of an outside user's test of the packed package (each was a failing reproduction).

interface PhotoDb {
  photo: { id: Generated<string>; user_id: string; url: string }
  item: { id: string; user_id: string; v: number }
  t: { id: number; f: number | string | null; d: string | null; ts: string | null; ok: boolean }
}

const NAMES = ['s1', 's2']
const TABLES = [{ name: 'photo', shardKey: 'user_id', primaryKey: 'id' }]

describe('hardening: real control database and two shards', () => {
  // [control, s1, s2]
  const clusters = usePostgresClusters(3)
  let control: Kysely<PhotoDb>
  let shards: Record<string, Kysely<PhotoDb>>

  // router.close() destroys the shards' Kysely instances: each test that closes one opens them again.
  const open = () => {
    shards = Object.fromEntries(
      NAMES.map((name, index) => [name, kysely<PhotoDb>(clusters[index + 1]!.primary)]),
    )
  }

  beforeAll(async () => {
    control = kysely<PhotoDb>(clusters[0]!.primary)
    open()
    for (const db of [control, ...Object.values(shards)]) {
      await sql`create table photo (id bigserial primary key, user_id bigint not null, url text not null)`.execute(
        db,
      )
      await sql`create table t (id int primary key, f float8, d date, ts timestamptz, ok boolean)`.execute(db)
    }
  })

  afterAll(async () => {
    await Promise.all([control, ...Object.values(shards)].map((db) => db.destroy()))
  })

  const firstKeyOn = (db: ShardedKysely<PhotoDb>, shard: string): number => {
    let key = 1
    while (db.shardOf(key) !== shard) key++
    return key
  }

  it('finding 1: a move whose primary keys collide with another bucket on the target is refused and undone; no row is lost', async () => {
    const store = postgresMapStore({ db: control, table: 'collision_map' })
    await store.save(createShardMap({ shards: NAMES }))
    const mover = createShardMover({ control, store, shards, tables: TABLES, cleanupDelayMs: 100 })
    await mover.install()
    const db = await createShardedKysely<PhotoDb>({ shards, map: store })
    try {
      const a = firstKeyOn(db, 's1')
      const b = firstKeyOn(db, 's2')
      // Per-shard bigserial: ids 1..20 exist on both shards, for different users (buckets).
      for (let i = 0; i < 20; i++) {
        await db
          .forKey(a)
          .insertInto('photo')
          .values({ user_id: String(a), url: `a${i}` })
          .execute()
        await db
          .forKey(b)
          .insertInto('photo')
          .values({ user_id: String(b), url: `b${i}` })
          .execute()
      }
      const photosOf = async (user: number) =>
        (
          await db
            .forKey(user)
            .selectFrom('photo')
            .select('url')
            .where('user_id', '=', String(user))
            .execute()
        )
          .map((row) => row.url)
          .sort()
      const before = { a: await photosOf(a), b: await photosOf(b) }

      const refused = await mover.moveBucket(db.bucketOf(a), 's2').catch((error: unknown) => error)
      expect(refused).toBeInstanceOf(ShardMoveError)
      expect((refused as ShardMoveError).context).toMatchObject({ conflict: 'primary-key', table: 'photo' })

      // Nothing overwritten, the bucket still on s1, no capture or fence left behind, no state.
      expect(db.shardOf(a)).toBe('s1')
      expect({ a: await photosOf(a), b: await photosOf(b) }).toEqual(before)
      const { rows: targetRows } = await sql<{
        n: number
      }>`select count(*)::int as n from photo where user_id = ${a}`.execute(shards.s2!)
      expect(targetRows[0]?.n).toBe(0)
      const { rows: states } = await sql<{
        n: number
      }>`select count(*)::int as n from scale_shard_bucket_state`.execute(shards.s1!)
      expect(states[0]?.n).toBe(0)
      expect(await mover.status()).toEqual([])
      // Writes to the bucket still work after the refused move.
      await db
        .forKey(a)
        .insertInto('photo')
        .values({ user_id: String(a), url: 'after' })
        .execute()
      expect(await photosOf(a)).toContain('after')
    } finally {
      await db.close().catch(() => {})
      await mover.close()
      open()
    }
  })

  it('finding 2 and 12: a hung map store fails key-routed queries with ShardMapStaleError (a true message), and they work again once it answers', async () => {
    const store = postgresMapStore({ db: control, table: 'hung_map' })
    await store.save(createShardMap({ shards: NAMES }))
    const db = await createShardedKysely<PhotoDb>({
      shards,
      map: store,
      refreshIntervalMs: 0,
      maxMapAgeMs: 200,
      mapLoadTimeoutMs: 300,
    })
    const primary = clusters[0]!.primary
    try {
      primary.pause()
      await new Promise((resolve) => setTimeout(resolve, 250)) // the map is now older than maxMapAgeMs
      for (const key of [1, 2]) {
        const error = await sql`select 1`.execute(db.forKey(key)).catch((caught: unknown) => caught)
        expect(error).toBeInstanceOf(ShardMapStaleError)
        expect((error as ShardMapStaleError).message).not.toMatch(/refused a write/)
        expect((error as ShardMapStaleError).context.mapAgeMs).toBeGreaterThan(0)
      }
      primary.resume()
      // Once the store answers, key-routed queries work again (the first reload after SIGCONT may
      // still miss its 300 ms on a loaded machine: retried, as a caller would).
      let rows: { one: number }[] = []
      await waitUntil('a key-routed query to work again', async () => {
        rows = await sql<{ one: number }>`select 1 as one`.execute(db.forKey(3)).then(
          (result) => result.rows,
          () => [],
        )
        return rows.length > 0
      })
      expect(rows).toEqual([{ one: 1 }])
    } finally {
      primary.resume()
      await db.close()
      open()
    }
  })

  it('finding 3: global IDs recover once the control database is back, and failures are GlobalIdStoreError', async () => {
    const map = createShardMap({ shards: NAMES })
    const primary = clusters[0]!.primary
    const ids = createGlobalIds({ db: control, map })
    await primary.stop()
    try {
      const error = await ids.next(1).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(GlobalIdStoreError)
    } finally {
      await primary.start()
    }
    const id = await ids.next(1)
    expect(id).toBeGreaterThan(0n)
    await ids.close()
  })

  it('finding 13: an ID past the 41-bit timestamp range is refused, not returned', async () => {
    const ids = createGlobalIds({
      db: control,
      map: createShardMap({ shards: NAMES }),
      clock: () => Date.UTC(2097, 0, 1),
    })
    await expect(ids.next(1)).rejects.toBeInstanceOf(GlobalIdRangeError)
    await ids.close()
  })

  it('finding 5: GROUP BY keeps NaN, Infinity, -Infinity and NULL groups apart (float8, date, timestamptz)', async () => {
    const db = await createShardedKysely<PhotoDb>({ shards, map: createShardMap({ shards: NAMES }) })
    try {
      const fs = ['NaN', 'Infinity', '-Infinity', null, '1']
      const ds = ['infinity', '-infinity', null, '2025-01-01']
      const ts = ['infinity', '-infinity', null, '2025-01-01T00:00:00Z', 'infinity']
      await sql`delete from t`.execute(control)
      for (let i = 0; i < 20; i++) {
        const row = {
          id: i,
          f: fs[i % 5] ?? null,
          d: ds[i % 4] ?? null,
          ts: ts[(i * 3) % 5] ?? null,
          ok: i % 2 === 0,
        }
        await control.insertInto('t').values(row).execute()
        await db.forKey(i).insertInto('t').values(row).execute()
      }
      for (const column of ['f', 'd', 'ts'] as const) {
        const query = (x: Kysely<PhotoDb>) =>
          x
            .selectFrom('t')
            .select((eb) => [column, eb.fn.countAll().as('n')])
            .groupBy(column)
            .orderBy(column)
        const expected = await query(control).execute()
        expect(expected.length).toBeGreaterThan(3)
        const { rows } = await db.allShards().select(query)
        expect(rows).toEqual(expected)
      }
    } finally {
      await db.close()
      open()
    }
  })

  it('finding 7: SQL errors in allShards() are rethrown as they are, also with allowPartial', async () => {
    const db = await createShardedKysely<PhotoDb>({ shards, map: createShardMap({ shards: NAMES }) })
    try {
      const maxBool = await db
        .allShards()
        .select((x) => x.selectFrom('t').select((eb) => eb.fn.max('ok').as('m')))
        .catch((error: unknown) => error)
      expect(maxBool).not.toBeInstanceOf(ShardUnreachableError)
      expect((maxBool as { code?: string }).code).toBe('42883')
      const missing = await db
        .allShards()
        // biome-ignore lint/suspicious/noExplicitAny: a table that does not exist
        .select((x) => (x as Kysely<any>).selectFrom('no_such_table').select('id').orderBy('id'), {
          allowPartial: true,
        })
        .catch((error: unknown) => error)
      expect((missing as { code?: string }).code).toBe('42P01')
      const each = await db
        .allShards()
        .each((x) => sql`select * from no_such_table`.execute(x).then((r) => r.rows), { allowPartial: true })
        .catch((error: unknown) => error)
      expect((each as { code?: string }).code).toBe('42P01')
    } finally {
      await db.close()
      open()
    }
  })

  it('finding 9: deadlines are validated; Infinity means no deadline', async () => {
    await expect(
      createShardedKysely<PhotoDb>({ shards, map: createShardMap({ shards: NAMES }), scatterDeadlineMs: 0 }),
    ).rejects.toBeInstanceOf(ShardingOptionsError)
    await expect(
      createShardedKysely<PhotoDb>({
        shards,
        map: createShardMap({ shards: NAMES }),
        scatterDeadlineMs: 2 ** 31,
      }),
    ).rejects.toBeInstanceOf(ShardingOptionsError)
    const db = await createShardedKysely<PhotoDb>({ shards, map: createShardMap({ shards: NAMES }) })
    try {
      const query = (x: Kysely<PhotoDb>) => x.selectFrom('t').select('id').orderBy('id')
      for (const deadlineMs of [0, -5, Number.NaN, 2 ** 31])
        await expect(db.allShards().select(query, { deadlineMs })).rejects.toBeInstanceOf(
          ShardingOptionsError,
        )
      const { rows, complete } = await db.allShards().select(query, { deadlineMs: Number.POSITIVE_INFINITY })
      expect(complete).toBe(true)
      expect(rows.length).toBe((await query(control).execute()).length)
    } finally {
      await db.close()
      open()
    }
  })

  it('finding 8: integer keys given as text route with integerShardKey where the stored bigint is found', async () => {
    const db = await createShardedKysely<PhotoDb>({ shards, map: createShardMap({ shards: NAMES }) })
    try {
      await sql`truncate photo`.execute(db.shard('s1'))
      await sql`truncate photo`.execute(db.shard('s2'))
      let lost = 0
      for (let user = 1; user <= 60; user++) {
        for (const spelling of [`0${user}`, ` ${user}`, `+${user} `]) {
          const key = integerShardKey(spelling)
          await db
            .forKey(key)
            .insertInto('photo')
            .values({ user_id: String(key), url: spelling })
            .execute()
        }
        const found = await db
          .forKey(user)
          .selectFrom('photo')
          .select('url')
          .where('user_id', '=', String(user))
          .execute()
        if (found.length !== 3) lost++
      }
      expect(lost).toBe(0)
      for (const bad of ['', '4 2', '42a', '1e3', '0x2a'])
        expect(() => integerShardKey(bad)).toThrow(InvalidShardKeyError)
    } finally {
      await db.close()
      open()
    }
  })

  it('finding 10: a catch-up that cannot keep up with writes does not fence with a backlog; the move resumes later and loses nothing', async () => {
    for (const db of Object.values(shards))
      await sql`create table item (id bigint primary key, user_id bigint not null, v int not null)`.execute(
        db,
      )
    const store = postgresMapStore({ db: control, table: 'backlog_map' })
    await store.save(createShardMap({ shards: NAMES }))
    const tables = [{ name: 'item', shardKey: 'user_id', primaryKey: 'id' }]
    const db = await createShardedKysely<PhotoDb>({ shards, map: store, refreshIntervalMs: 100 })
    const user = firstKeyOn(db, 's1')
    const bucket = db.bucketOf(user)
    for (let id = 1; id <= 20; id++)
      await db
        .forKey(user)
        .insertInto('item')
        .values({ id: String(id), user_id: String(user), v: 0 })
        .execute()
    let writes = 0
    // Between copy and catch-up, 100 writes to the bucket: more than 3 rounds of 10 can replay.
    const slow = createMover(
      { control, store, shards, tables, chunkSize: 10, cleanupDelayMs: 100 },
      {
        catchUpRounds: 3,
        afterStep: async (step) => {
          if (step !== 'copying') return
          for (let i = 0; i < 100; i++) {
            writes++
            await db
              .forKey(user)
              .updateTable('item')
              .set({ v: writes })
              .where('id', '=', String((i % 20) + 1))
              .execute()
          }
        },
      },
    )
    const mover = createShardMover({ control, store, shards, tables, chunkSize: 10, cleanupDelayMs: 100 })
    try {
      await slow.install()
      const refused = await slow.moveBucket(bucket, 's2').catch((error: unknown) => error)
      expect(refused).toBeInstanceOf(ShardMoveError)
      expect((refused as ShardMoveError).message).toMatch(/did not keep up/)
      // Not fenced: writes to the bucket still succeed on the source, the move waits to resume.
      await db.forKey(user).updateTable('item').set({ v: -1 }).where('id', '=', '1').execute()
      expect((await mover.status()).map((move) => move.step)).toEqual(['catching-up'])
      const report = await mover.moveBucket(bucket, 's2')
      expect(report.resumed).toBe(true)
      await db.refresh()
      expect(db.shardOf(user)).toBe('s2')
      const rows = await db.forKey(user).selectFrom('item').select(['id', 'v']).orderBy('id').execute()
      expect(rows.length).toBe(20)
      expect(rows.find((row) => row.id === '1')?.v).toBe(-1)
      expect(rows.filter((row) => row.id !== '1').every((row) => row.v > 0)).toBe(true)
    } finally {
      await slow.close()
      await mover.close()
      await db.close()
      open()
    }
  })

  it('finding 14: the README CLI sequence (init, install, plan) works; install before init says to run init', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shard-cli-'))
    try {
      const config = join(dir, 'shard.json')
      await writeFile(
        config,
        JSON.stringify({
          control: clusters[0]!.primary.url,
          shards: Object.fromEntries(NAMES.map((name, index) => [name, clusters[index + 1]!.primary.url])),
          tables: TABLES,
          mapTable: 'cli_map',
        }),
      )
      const cli = (args: string[]) =>
        new Promise<{ code: number; output: string }>((resolve) => {
          execFile(
            process.execPath,
            ['--import', 'tsx', 'src/cli.ts', ...args, '--config', config],
            { cwd: packageDir },
            (error, stdout, stderr) =>
              resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}${stderr}` }),
          )
        })
      const early = await cli(['install'])
      expect(early.code).toBe(1)
      expect(early.output).toMatch(/scale-shard init --shards/)
      expect(early.output).not.toMatch(/move failed/)
      expect((await cli(['init', '--shards', NAMES.join(',')])).code).toBe(0)
      expect((await cli(['install'])).code).toBe(0)
      const plan = await cli(['plan', '--shards', NAMES.join(',')])
      expect(plan).toMatchObject({ code: 0 })
      expect(plan.output).toMatch(/buckets move/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
