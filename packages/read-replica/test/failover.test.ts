import type { PostgresCluster } from '@scale/testkit'
import { usePostgres } from '@scale/testkit/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createReplicatedKysely,
  type PrimaryChangedEvent,
  PrimaryReadOnlyError,
  PrimaryUnreachableError,
  type ReplicatedKysely,
} from '../src/index.js'
import { type Database, pool, portNames, SCHEMA } from './helpers.js'

describe('primary detection across several primary hosts', () => {
  const postgres = usePostgres({ replicas: 2 })
  let cluster: PostgresCluster
  const dbs: ReplicatedKysely<Database>[] = []
  const open = (db: ReplicatedKysely<Database>) => {
    dbs.push(db)
    return db
  }

  beforeAll(async () => {
    cluster = postgres.cluster
    await cluster.primary.query(SCHEMA)
    await cluster.waitForReplication()
  })

  afterAll(async () => {
    await Promise.all(dbs.map((db) => db.destroy()))
  })

  it('a host in recovery listed first is never written to; a replica-only "primary" rejects writes with a typed error', async () => {
    const [first, second] = cluster.replicas
    if (!first || !second) throw new Error('two replicas expected')
    const names = portNames(cluster)
    const detecting = open(
      createReplicatedKysely<Database>({
        primary: [pool(second), pool(cluster.primary)],
        replicas: [pool(first)],
      }),
    )
    const row = await detecting
      .insertInto('item')
      .values({ value: 'detected' })
      .returning('port')
      .executeTakeFirstOrThrow()
    expect(names.get(row.port)).toBe('primary')

    // Misconfigured: the only "primary" is a replica. The server refuses; we say so, typed.
    const wrong = open(createReplicatedKysely<Database>({ primary: pool(second) }))
    await expect(wrong.insertInto('item').values({ value: 'never' }).execute()).rejects.toBeInstanceOf(
      PrimaryReadOnlyError,
    )
    await cluster.waitForReplication()
    expect(await cluster.primary.query(`select 1 from item where value = 'never'`)).toHaveLength(0)
  })

  it('replica promoted and old primary stopped: writes reach the new primary after detection, failures are typed', async () => {
    const [candidate, other] = cluster.replicas
    if (!candidate || !other) throw new Error('two replicas expected')
    const db = open(
      createReplicatedKysely<Database>({
        primary: [
          { pool: pool(cluster.primary), name: 'old-primary' },
          { pool: pool(candidate), name: 'promoted' },
        ],
        replicas: [
          { pool: pool(candidate), name: 'replica-1' },
          { pool: pool(other), name: 'replica-2' },
        ],
        monitorIntervalMs: 100,
      }),
    )
    const changes: PrimaryChangedEvent[] = []
    db.router.on('primary-changed', (event) => changes.push(event))
    await db.router.ready()
    const before = await db
      .insertInto('item')
      .values({ value: 'failover-before' })
      .returning('port')
      .executeTakeFirstOrThrow()
    expect(before.port).toBe(cluster.primary.port)
    await cluster.waitForReplication()

    await cluster.primary.stop()
    const attempt = async (i: number) => {
      try {
        const row = await db
          .insertInto('item')
          .values({ value: `failover-${i}` })
          .returning('port')
          .executeTakeFirstOrThrow()
        return { ok: true as const, port: row.port }
      } catch (error) {
        return { ok: false as const, error }
      }
    }
    // While no host accepts writes, every write fails with a typed error: nothing is lost silently.
    const during = await attempt(-1)
    expect(during.ok).toBe(false)
    expect(during.ok ? undefined : during.error).toBeInstanceOf(PrimaryUnreachableError)

    await candidate.promote()
    const results: Awaited<ReturnType<typeof attempt>>[] = []
    for (let i = 0; results.filter((r) => r.ok).length < 20 && i < 2_000; i++) {
      results.push(await attempt(i))
      if (!results[results.length - 1]?.ok) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const ok = results.filter((r) => r.ok)
    const failed = results.filter((r) => !r.ok)
    expect(ok).toHaveLength(20)
    expect(ok.every((r) => r.port === candidate.port)).toBe(true)
    for (const failure of failed) {
      expect(failure.ok ? undefined : failure.error).toSatisfy(
        (e: unknown) => e instanceof PrimaryUnreachableError || e instanceof PrimaryReadOnlyError,
      )
    }
    expect(changes).toEqual([{ from: 'old-primary', to: 'promoted' }])
    // Server-side: the promoted node holds exactly the writes reported as successful.
    const [count] = await candidate.query<{ n: string }>(
      `select count(*) as n from item where value like 'failover-%' and value <> 'failover-before'`,
    )
    expect(Number(count?.n)).toBe(ok.length)
    // The promoted node is out of recovery: it is no longer used as a replica.
    expect(db.router.metrics().replicas.find((r) => r.name === 'replica-1')?.excludedFor).toBe('promoted')
  })
})
