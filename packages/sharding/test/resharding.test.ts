import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { usePostgresClusters } from '@scale/testkit/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createShardedKysely, createShardMap, planRebalance, postgresMapStore } from '../src/index.js'
import { createMover } from '../src/reshard/mover.js'
import { type ItemsDb, MAP_TABLE, NAMES, ReshardRig, TABLES } from './reshard-harness.js'

const packageDir = fileURLToPath(new URL('..', import.meta.url))

describe('plan', () => {
  it('moves the 1/(n+1) minimum going from 4 to 5 shards; % N moves most keys', () => {
    const map = createShardMap({ shards: ['s1', 's2', 's3', 's4'] })
    const plan = planRebalance(map, NAMES)
    expect(plan.minimumFraction).toBeCloseTo(1 / 5)
    expect(plan.moves.length).toBe(204) // 1024 - 4 * 205: the fifth shard's share, nothing more
    expect(plan.fractionMoved).toBeLessThanOrEqual(plan.minimumFraction)
    expect(new Set(plan.moves.map((m) => m.to))).toEqual(new Set(['s5']))
    const modulo4 = createShardMap({ shards: ['s1', 's2', 's3', 's4'], strategy: 'modulo' })
    const modulo5 = createShardMap({ shards: NAMES, strategy: 'modulo' })
    let moved = 0
    for (let key = 1; key <= 10_000; key++) if (modulo4.shardOf(key) !== modulo5.shardOf(key)) moved++
    expect(moved / 10_000).toBeGreaterThan(0.75)
  })
})

describe('online resharding from 4 to 5 shards under writes', () => {
  const clusters = usePostgresClusters(5)
  let rig: ReshardRig

  beforeAll(async () => {
    rig = new ReshardRig(clusters)
  })

  afterAll(async () => {
    await rig?.close()
  })

  const mover = (skipCatchUpAndVerify: boolean, progress: string[] = []) =>
    createMover(
      {
        control: rig.control,
        store: rig.store,
        shards: rig.shards(),
        tables: TABLES,
        chunkSize: 50,
        cleanupDelayMs: 300,
        onProgress: (event) => progress.push(`${event.bucket}:${event.step}`),
      },
      {
        skipCatchUpAndVerify,
        // Between copy and cut-over, write to the moving bucket: only the catch-up carries these.
        afterStep: async (step, bucket) => {
          if (step !== 'copying') return
          const users = Array.from({ length: 2000 }, (_, i) => String(i + 1)).filter(
            (user) => rig.router.bucketOf(user) === bucket,
          )
          for (const user of users.slice(0, 20)) await rig.insert(user, 7)
        },
      },
    )

  it('loses nothing, duplicates nothing, leaves nothing on the wrong shard', async () => {
    await rig.reset(3000)
    const move = mover(false)
    await move.install()
    const plan = await move.plan(NAMES)
    expect(plan.moves.length).toBe(3) // 16 buckets: the fifth shard's share
    // Routers that never poll and do not listen: they only learn of the moves when a shard refuses them.
    let fencedRetries = 0
    const stale = async () =>
      createShardedKysely<ItemsDb>({
        shards: rig.shards(),
        map: postgresMapStore({ db: rig.control, table: MAP_TABLE }),
        refreshIntervalMs: 0,
        maxMapAgeMs: 0, // never reloads on its own: only a fence can tell it
        metrics: {
          increment: (name) => {
            if (name === 'sharding_fenced_retries_total') fencedRetries++
          },
        },
      })
    // No polling either, but it reloads a map older than maxMapAgeMs before routing.
    const aging = await createShardedKysely<ItemsDb>({
      shards: rig.shards(),
      map: postgresMapStore({ db: rig.control, table: MAP_TABLE }),
      refreshIntervalMs: 0,
      maxMapAgeMs: 1,
    })
    const staleSingle = await stale()
    const staleTransaction = await stale()
    rig.startWriters(4)
    const reports = await move.rebalance(NAMES)
    await rig.stopWriters()
    expect(rig.counts.failures).toBe(0)
    expect(rig.counts.wrongReads).toBe(0)
    expect(rig.counts.reads).toBeGreaterThan(0)
    expect(rig.counts.ops).toBeGreaterThan(100)
    expect(await rig.audit()).toMatchObject({ lost: 0, duplicated: 0, wrongShard: 0, ghosts: 0 })
    expect(reports).toHaveLength(3)
    for (const report of reports) {
      expect(report.target).toBe('s5')
      expect(report.rowsCopied).toBeGreaterThan(0)
      expect(report.changesApplied).toBeGreaterThan(0)
      expect(report.checksumChunks).toBeGreaterThan(0)
      expect(Number.isFinite(report.pauseMs)).toBe(true)
      const where = await move.verify(report.bucket)
      expect(where.owner).toBe('s5')
      expect(Object.entries(where.rowsByShard).filter(([shard, n]) => shard !== 's5' && n > 0)).toEqual([])
    }
    expect((await move.status()).every((state) => state.step === 'done')).toBe(true)
    expect(rig.router.map.epoch).toBe(4)

    // Still on epoch 1: the old shard's fence refuses the write, the router reloads and retries on s5.
    const movedUsers = Array.from({ length: 4000 }, (_, i) => String(i + 1)).filter(
      (user) => rig.router.shardOf(user) === 's5',
    )
    expect(staleSingle.map.epoch).toBe(1)
    await staleSingle
      .forKey(movedUsers[0]!)
      .insertInto('items')
      .values({ id: '9000001', user_id: movedUsers[0]!, value: 1 })
      .execute()
    await staleTransaction.transactionForKey(movedUsers[1]!, (trx) =>
      trx.insertInto('items').values({ id: '9000002', user_id: movedUsers[1]!, value: 2 }).execute(),
    )
    expect(staleSingle.map.epoch).toBe(4)
    expect(staleTransaction.map.epoch).toBe(4)
    expect(fencedRetries).toBe(2)
    const s5 = rig.direct[4]!
    expect(
      (await s5.selectFrom('items').select('id').where('id', 'in', ['9000001', '9000002']).execute()).length,
    ).toBe(2)
    for (const db of rig.direct.slice(0, 4)) {
      expect(
        await db.selectFrom('items').select('id').where('id', 'in', ['9000001', '9000002']).execute(),
      ).toEqual([])
    }
    // The aging router reloads first, so its UPDATE finds the row on s5 (on the old shard, whose
    // copy is gone, it would have matched nothing and fired no fence).
    expect(aging.map.epoch).toBe(1)
    const updated = await aging
      .forKey(movedUsers[0]!)
      .updateTable('items')
      .set({ value: 5 })
      .where('id', '=', '9000001')
      .executeTakeFirstOrThrow()
    expect(updated.numUpdatedRows).toBe(1n)
    expect(aging.map.epoch).toBe(4)
    expect(fencedRetries).toBe(2)
    await aging.close()
    await staleSingle.close()
    await staleTransaction.close()
  })

  it('control run: without the catch-up, writes made during the copy are lost (the test can fail)', async () => {
    await rig.reset(1000)
    const move = mover(true)
    await move.install()
    rig.startWriters(2)
    await move.rebalance(NAMES)
    await rig.stopWriters()
    const audit = await rig.audit()
    expect(audit.lost).toBeGreaterThanOrEqual(20 * 3)
  })

  it('resumes after the mover is SIGKILLed mid-copy and mid-catch-up, with the same 0/0/0', async () => {
    await rig.reset(3000)
    const dir = await mkdtemp(join(tmpdir(), 'scale-shard-'))
    try {
      const url = (index: number) => {
        const node = clusters[index]!.primary
        return `postgres://${node.user}@${node.host}:${node.port}/${node.database}`
      }
      const config = join(dir, 'config.json')
      await writeFile(
        config,
        JSON.stringify({
          control: url(0),
          shards: Object.fromEntries(NAMES.map((name, index) => [name, url(index)])),
          tables: TABLES,
          mapTable: 'reshard_test_map',
          chunkSize: 10,
          cleanupDelayMs: 300,
        }),
      )
      const cli = (args: string[]) =>
        spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args, '--config', config], {
          cwd: packageDir,
        })
      const runUntil = (
        child: ChildProcess,
        pattern: RegExp | undefined,
        onOutput?: (output: string) => void,
      ) =>
        new Promise<{ code: number | null; killed: boolean; output: string }>((resolve) => {
          let output = ''
          let killed = false
          child.stdout?.on('data', (data: Buffer) => {
            output += data.toString()
            onOutput?.(output)
            if (pattern && !killed && pattern.test(output)) {
              killed = true
              child.kill('SIGKILL')
            }
          })
          child.stderr?.on('data', (data: Buffer) => {
            output += data.toString()
          })
          child.on('exit', (code) => resolve({ code, killed, output }))
        })
      expect((await runUntil(cli(['install']), undefined)).code).toBe(0)
      rig.startWriters(4)
      const first = await runUntil(cli(['move', '--shards', NAMES.join(',')]), /copying \d+ rows/)
      expect(first.killed).toBe(true)
      // Writes into the bucket being copied, so its catch-up surely has changes to replay.
      let nudged: Promise<unknown> | undefined
      const nudge = (output: string) => {
        const copying = /bucket (\d+): copying/.exec(output)
        if (nudged || !copying) return
        const bucket = Number(copying[1])
        const users = Array.from({ length: 4000 }, (_, i) => String(i + 1)).filter(
          (u) => rig.router.bucketOf(u) === bucket,
        )
        nudged = Promise.all(users.slice(0, 5).map((user) => rig.insert(user, 3)))
      }
      const second = await runUntil(
        cli(['move', '--shards', NAMES.join(',')]),
        /catching-up \d+ changes/,
        nudge,
      )
      await nudged
      expect(second.killed).toBe(true)
      const third = await runUntil(cli(['move', '--shards', NAMES.join(',')]), undefined)
      expect(`${third.code} ${third.output.split('\n').slice(-4).join(' | ')}`).toMatch(/^0 /)
      expect(third.output).toMatch(/\(resumed\)/)
      await rig.stopWriters()
      expect(rig.counts.failures).toBe(0)
      expect(rig.counts.wrongReads).toBe(0)
      expect(await rig.audit()).toMatchObject({ lost: 0, duplicated: 0, wrongShard: 0, ghosts: 0 })
      const status = await runUntil(cli(['status']), undefined)
      expect(status.output.trim().split('\n')).toHaveLength(3)
      expect(status.output).not.toMatch(/copying|catching-up|fenced|published/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
