import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { usePostgres } from '@scale/testkit/vitest'
import type { Kysely } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  bucketOfId,
  ClockBackwardsError,
  createGlobalIds,
  createShardMap,
  InvalidGlobalIdError,
  timestampOfId,
} from '../src/index.js'
import { kysely } from './helpers.js'

const run = promisify(execFile)
const worker = fileURLToPath(new URL('./fixtures/id-worker.ts', import.meta.url))

function allDistinct(ids: BigUint64Array): boolean {
  const sorted = ids.slice().sort()
  for (let i = 1; i < sorted.length; i++) if (sorted[i] === sorted[i - 1]) return false
  return true
}

describe('global IDs', () => {
  const postgres = usePostgres()
  let control: Kysely<unknown>
  const map = createShardMap({
    shards: ['s1', 's2', 's3', 's4'],
    hotKeys: [{ key: 'celebrity', shard: 's4' }],
  })

  beforeAll(async () => {
    control = kysely(postgres.primary)
  })

  afterAll(async () => {
    await control.destroy()
  })

  it('1,000,000 IDs from 4 concurrent processes are all unique and carry their bucket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ids-'))
    try {
      const outputs = [0, 1, 2, 3].map((index) => join(dir, `ids-${index}.bin`))
      const results = await Promise.all(
        outputs.map((out) =>
          run(
            process.execPath,
            ['--import', 'tsx', worker, JSON.stringify(postgres.primary.connection), '250000', out],
            {
              cwd: fileURLToPath(new URL('..', import.meta.url)),
            },
          ),
        ),
      )
      for (const result of results) expect(JSON.parse(result.stdout)).toEqual({ wrongBucket: 0 })
      const all = new BigUint64Array(1_000_000)
      for (const [index, out] of outputs.entries()) {
        const bytes = await readFile(out)
        all.set(new BigUint64Array(bytes.buffer, bytes.byteOffset, 250_000), index * 250_000)
      }
      expect(all.every((id) => id > 0n)).toBe(true)
      expect(allDistinct(all)).toBe(true)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 180_000)

  it('never repeats an ID when the clock steps back 2 s, in one process or across two', async () => {
    let now = Date.UTC(2030, 0, 1)
    const clock = () => now
    const first = createGlobalIds({ db: control, map, clock })
    const second = createGlobalIds({ db: control, map, clock: () => now - 2_000 }) // a host 2 s behind
    const issued: bigint[] = []
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 3_000; i++) {
        issued.push(await first.next('celebrity'))
        issued.push(await second.next('celebrity'))
      }
      now += round === 2 ? -2_000 : 7 // the clock steps back 2 s after the third round
    }
    expect(new Set(issued).size).toBe(issued.length)
    expect(issued.every((id) => bucketOfId(id) === 1024)).toBe(true)
    // The first generator's own IDs never go down in time, even across the step back.
    const own = issued.filter((_, index) => index % 2 === 0)
    for (let i = 1; i < own.length; i++)
      expect(timestampOfId(own[i]!)).toBeGreaterThanOrEqual(timestampOfId(own[i - 1]!))
    await first.close()
    await second.close()
  })

  it('refuses when the clock is further behind than maxClockBehindMs, then resumes without repeats', async () => {
    let now = Date.UTC(2031, 0, 1)
    const ids = createGlobalIds({ db: control, map, clock: () => now, maxClockBehindMs: 1_000 })
    const before = await ids.next(42)
    now -= 2_000
    await expect(ids.next(42)).rejects.toThrow(ClockBackwardsError)
    now += 2_001
    const after = await ids.next(42)
    expect(after).toBeGreaterThan(before)
    expect(bucketOfId(after)).toBe(map.bucketOf(42))
    expect(timestampOfId(after)).toBeGreaterThanOrEqual(Date.UTC(2031, 0, 1))
  })

  it('refuses values that are not IDs', () => {
    expect(() => bucketOfId(-1n)).toThrow(InvalidGlobalIdError)
    expect(() => bucketOfId(1n << 63n)).toThrow(InvalidGlobalIdError)
    expect(() => bucketOfId('abc')).toThrow(InvalidGlobalIdError)
    expect(bucketOfId('5120')).toBe(5)
  })
})
