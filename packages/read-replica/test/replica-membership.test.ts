import { type PostgresCluster, waitFor } from '@scale/testkit'
import { sql } from 'kysely'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createReplicatedKysely,
  type NodeInput,
  ReadReplicaOptionsError,
  type ReplicatedKysely,
} from '../src/index.js'
import { type Database, pool, useSeededReplicas } from './helpers.js'

const port = sql<number>`inet_server_port()`

describe('replicas added and removed at run time', () => {
  const seeded = useSeededReplicas()
  let cluster: PostgresCluster
  let names: Map<number, string>
  const dbs: ReplicatedKysely<Database>[] = []

  beforeAll(async () => {
    cluster = seeded.cluster
    names = seeded.names
  })

  afterAll(async () => {
    await Promise.all(dbs.map((db) => db.destroy()))
  })

  const servers = async (db: ReplicatedKysely<Database>, reads = 12) => {
    const seen = new Set<string | undefined>()
    for (let i = 0; i < reads; i++) {
      const row = await db
        .selectFrom('item')
        .select(port.as('server'))
        .where('id', '=', 1)
        .executeTakeFirstOrThrow()
      seen.add(names.get(row.server))
    }
    return seen
  }

  it('addReplica / removeReplica: reads follow, running reads finish, the removed pool is ended', async () => {
    const [first, second] = cluster.replicas
    if (!first || !second) throw new Error('two replicas expected')
    const firstPool = pool(first)
    const db = createReplicatedKysely<Database>({
      primary: pool(cluster.primary),
      replicas: [{ pool: firstPool, name: 'replica-1' }],
      balance: 'round-robin',
      outsideContext: 'none',
      monitorIntervalMs: 100,
    })
    dbs.push(db)
    await db.router.ready()
    expect(await servers(db)).toEqual(new Set(['replica-1']))
    await db.router.addReplica({ pool: pool(second), name: 'replica-2' })
    expect(await servers(db)).toEqual(new Set(['replica-1', 'replica-2']))
    await expect(db.router.addReplica({ pool: pool(second), name: 'replica-2' })).rejects.toBeInstanceOf(
      ReadReplicaOptionsError,
    )
    // reads running while replica-1 is removed all succeed
    const running = Promise.all(Array.from({ length: 20 }, () => servers(db, 3)))
    expect(await db.router.removeReplica('replica-1')).toBe(true)
    await running
    expect(await servers(db)).toEqual(new Set(['replica-2']))
    expect((firstPool as pg.Pool & { ended: boolean }).ended).toBe(true)
    expect(db.router.metrics().replicas.map((r) => r.name)).toEqual(['replica-2'])
    expect(await db.router.removeReplica('replica-1')).toBe(false)
  })

  it('discoverReplicas: the set follows what the callback returns', async () => {
    const [first, second] = cluster.replicas
    if (!first || !second) throw new Error('two replicas expected')
    let discovered: NodeInput[] = [{ pool: pool(first), name: 'replica-1' }]
    const db = createReplicatedKysely<Database>({
      primary: pool(cluster.primary),
      // a fresh pool per refresh, as a DNS-driven list would build: known names keep their pool
      discoverReplicas: () => discovered.map((d) => ({ ...(d as { pool: pg.Pool; name: string }) })),
      discoverIntervalMs: 100,
      balance: 'round-robin',
      outsideContext: 'none',
      monitorIntervalMs: 100,
    })
    dbs.push(db)
    await db.router.ready()
    await waitFor('replica-1 discovered', async () => (await servers(db, 4)).has('replica-1'))
    discovered = [{ pool: pool(second), name: 'replica-2' }]
    await waitFor('only replica-2', async () => {
      const seen = await servers(db, 6)
      return seen.size === 1 && seen.has('replica-2')
    })
    expect(db.router.metrics().replicas.map((r) => r.name)).toEqual(['replica-2'])
  })
})
