import { type PostgresCluster, waitFor } from '@scale/testkit'
import { sql } from 'kysely'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  type Balancer,
  createReplicatedKysely,
  type HealthEvent,
  NoReplicaAvailableError,
  type ReplicatedKysely,
  type RouteEvent,
} from '../src/index.js'
import { type Database, pool, replicatedDb, useSeededReplicas } from './helpers.js'

const port = sql<number>`inet_server_port()`

/** Runs a primary-key read and names the server that answered it (server-side proof). */
async function readServer(db: ReplicatedKysely<Database>, names: Map<number, string>) {
  const row = await db
    .selectFrom('item')
    .select(port.as('server'))
    .where('id', '=', 1)
    .executeTakeFirstOrThrow()
  return names.get(row.server)
}

/** Reads by primary key from `workers` loops until stopped; counts failures and where reads ran. */
function readLoad(db: ReplicatedKysely<Database>, names: Map<number, string>, workers = 8) {
  const servedBy = new Map<string, number>()
  const failures: unknown[] = []
  let recent: string[] = []
  let running = true
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      try {
        const name = (await readServer(db, names)) ?? '?'
        servedBy.set(name, (servedBy.get(name) ?? 0) + 1)
        recent.push(name)
      } catch (error) {
        failures.push(error)
      }
    }
  })
  return {
    servedBy,
    failures,
    /** Servers that answered since the last call. */
    takeRecent(): Set<string> {
      const seen = new Set(recent)
      recent = []
      return seen
    },
    async stop() {
      running = false
      await Promise.all(loops)
    },
  }
}

describe('replica monitor: lag exclusion with hysteresis, kill -9, all replicas down, rejoin', () => {
  const seeded = useSeededReplicas()
  let cluster: PostgresCluster
  let names: Map<number, string>
  const dbs: ReplicatedKysely<Database>[] = []

  beforeAll(async () => {
    cluster = seeded.cluster
    names = seeded.names
  })

  // A test that fails midway must not leave a replica killed or frozen for the next one.
  afterEach(async () => {
    for (const replica of cluster.replicas) {
      replica.resume()
      if (!replica.running) await replica.start()
    }
  })

  afterAll(async () => {
    await Promise.all(dbs.map((db) => db.destroy()))
  })

  it('a replica delayed beyond maxLagSeconds is excluded, and rejoins once it has caught up', async () => {
    const logged: string[] = []
    const logger = {
      warn: (o: Record<string, unknown>, m: string) => logged.push(`${m} ${String(o.node)}`),
      info: (o: Record<string, unknown>, m: string) => logged.push(`${m} ${String(o.node)}`),
      error: (o: Record<string, unknown>, m: string) => logged.push(`${m} ${String(o.node)}`),
    }
    const db = replicatedDb(cluster, {
      maxLagSeconds: 1,
      balance: 'round-robin',
      outsideContext: 'none',
      logger,
    })
    dbs.push(db)
    const health: HealthEvent[] = []
    db.router.on('replica-excluded', (event) => health.push(event))
    db.router.on('replica-rejoined', (event) => health.push(event))
    await db.router.ready()
    const delayed = cluster.replicas[0]
    if (!delayed) throw new Error('no replica')
    let writing = true
    // Lag only shows while there is something to replay: keep committing.
    const writer = (async () => {
      while (writing) {
        await cluster.primary.query(`insert into item (value) values ('tick')`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    })()
    try {
      await delayed.setApplyDelay(4_000)
      await waitFor(
        'replica-1 excluded as lagging',
        async () => {
          const state = db.router.metrics().replicas[0]
          return state?.status === 'excluded' && state.excludedFor === 'lagging'
        },
        { timeoutMs: 30_000 },
      )
      // While excluded, no read reaches it (checked server-side; a loaded machine may make replica-2
      // miss a check too, and then the primary answers).
      for (let i = 0; i < 20; i++) {
        expect(await readServer(db, names)).not.toBe('replica-1')
      }
      await delayed.setApplyDelay(0)
      await waitFor(
        'replica-1 to rejoin',
        async () => db.router.metrics().replicas[0]?.status === 'healthy',
        {
          timeoutMs: 30_000,
        },
      )
    } finally {
      writing = false
      await writer
    }
    // Round robin over both again (replica-2 may itself be briefly excluded on a loaded machine).
    const seen = new Set<string | undefined>()
    await waitFor('reads served by both replicas', async () => {
      seen.add(await readServer(db, names))
      return seen.has('replica-1') && seen.has('replica-2')
    })
    // replica-2 has no delay; only replica-1's transitions are asserted (a loaded machine may lag both)
    expect(health.filter((e) => e.node === 'replica-1').map((e) => e.reason)).toEqual(['lagging', 'healthy'])
    expect(logged.filter((line) => line.endsWith('replica-1'))).toEqual([
      '[@scale/read-replica] replica excluded replica-1',
      '[@scale/read-replica] replica rejoined replica-1',
    ])

    // Both replicas lagging: reads go to the primary, and the routing reason says why.
    writing = true
    const writer2 = (async () => {
      while (writing) {
        await cluster.primary.query(`insert into item (value) values ('tick')`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    })()
    try {
      await Promise.all(cluster.replicas.map((replica) => replica.setApplyDelay(4_000)))
      await waitFor('both replicas excluded as lagging', async () =>
        db.router.metrics().replicas.every((r) => r.excludedFor === 'lagging'),
      )
      expect(await readServer(db, names)).toBe('primary')
      expect(db.router.metrics().byReason.lagging).toBe(1)
      await Promise.all(cluster.replicas.map((replica) => replica.setApplyDelay(0)))
    } finally {
      writing = false
      await writer2
    }
    await waitFor('both replicas rejoin', async () =>
      db.router.metrics().replicas.every((r) => r.status === 'healthy'),
    )
  })

  it('a restarted replica fully caught up while the primary is idle is not counted as lagging (idle time is not lag)', async () => {
    const restarted = cluster.replicas[0]
    if (!restarted) throw new Error('a replica expected')
    const db = replicatedDb(cluster, { maxLagSeconds: 1, outsideContext: 'none' })
    dbs.push(db)
    const lagging: HealthEvent[] = []
    db.router.on('replica-excluded', (event) => {
      if (event.reason === 'lagging') lagging.push(event)
    })
    await db.router.ready()
    await db.insertInto('item').values({ value: 'before-idle' }).execute()
    await cluster.waitForReplication()
    const [setting] = await restarted.query<{ primary_conninfo: string }>('show primary_conninfo')
    // The replica restarts without streaming (no WAL receiver: its receive position is NULL) and
    // replays commits older than maxLagSeconds, while it already has all the primary's WAL.
    await restarted.query(`alter system set primary_conninfo = 'host=127.0.0.1 port=1 connect_timeout=1'`)
    try {
      await new Promise((resolve) => setTimeout(resolve, 2_000))
      await restarted.restart()
      const samples: { lagBytes: number | undefined; lagSeconds: number | undefined }[] = []
      await waitFor('40 samples of the restarted replica', async () => {
        const state = db.router.metrics().replicas[0]
        if (state?.status === 'healthy' || state?.excludedFor === 'lagging') samples.push(state)
        return samples.length >= 40
      })
      const caughtUp = samples.filter((s) => s.lagBytes === 0)
      expect(caughtUp.length).toBeGreaterThan(0)
      expect(caughtUp.filter((s) => (s.lagSeconds ?? 0) > 1)).toEqual([])
      expect(lagging).toEqual([])
    } finally {
      await restarted.query(
        `alter system set primary_conninfo = '${String(setting?.primary_conninfo).replaceAll("'", "''")}'`,
      )
      await restarted.query('select pg_reload_conf()')
    }
    await cluster.waitForReplication()
  })

  it('kill -9 of one replica under continuous reads: no read fails; all killed: reads go on at the primary; restarted replicas rejoin', async () => {
    const db = replicatedDb(cluster, { outsideContext: 'none' })
    const strict = replicatedDb(cluster, { outsideContext: 'none', whenNoReplica: 'error' })
    dbs.push(db, strict)
    await Promise.all([db.router.ready(), strict.router.ready()])
    const [first, second] = cluster.replicas
    if (!first || !second) throw new Error('two replicas expected')
    const load = readLoad(db, names)
    try {
      await waitFor('reads on both replicas', async () => {
        const seen = load.takeRecent()
        return seen.has('replica-1') && seen.has('replica-2')
      })
      await first.kill()
      await waitFor('replica-1 excluded', async () => db.router.metrics().replicas[0]?.status === 'excluded')
      load.takeRecent()
      await waitFor('reads only on replica-2', async () => {
        const seen = load.takeRecent()
        return seen.size === 1 && seen.has('replica-2')
      })
      expect(load.failures).toEqual([])

      await second.kill()
      // The reads in flight on replica-2 are retried on the primary first ('retry'); wait for the
      // fresh reads that find no replica at all ('no-replica') too.
      await waitFor('reads continue on the primary', async () => {
        const seen = load.takeRecent()
        return seen.size === 1 && seen.has('primary') && (db.router.metrics().byReason['no-replica'] ?? 0) > 0
      })
      expect(load.failures).toEqual([])
      // The same situation with whenNoReplica: 'error' is a typed error, not a hang or a crash.
      await waitFor('strict router sees both replicas out', async () =>
        strict.router.metrics().replicas.every((r) => r.status === 'excluded'),
      )
      await expect(strict.selectFrom('item').selectAll().execute()).rejects.toBeInstanceOf(
        NoReplicaAvailableError,
      )

      await Promise.all([first.start(), second.start()])
      await waitFor(
        'both replicas rejoin',
        async () => db.router.metrics().replicas.every((r) => r.status === 'healthy'),
        { timeoutMs: 60_000 },
      )
      load.takeRecent()
      await waitFor('reads back on both replicas', async () => {
        const seen = load.takeRecent()
        return seen.has('replica-1') && seen.has('replica-2') && !seen.has('primary')
      })
    } finally {
      await load.stop()
    }
    expect(load.failures).toEqual([])
  })

  it('a frozen replica (SIGSTOP of postmaster and backends) fails its checks by timeout, is excluded, and rejoins after SIGCONT', async () => {
    // 1 s: a check of the healthy replica slowed by a loaded machine must not exclude it as well.
    const db = replicatedDb(cluster, { checkTimeoutMs: 1_000, outsideContext: 'none' })
    const destroyedWhileFrozen = replicatedDb(cluster, { checkTimeoutMs: 1_000, outsideContext: 'none' })
    dbs.push(db, destroyedWhileFrozen)
    await Promise.all([db.router.ready(), destroyedWhileFrozen.router.ready()])
    const frozen = cluster.replicas[1]
    if (!frozen) throw new Error('two replicas expected')
    frozen.pause() // SIGSTOP of the postmaster and every backend
    try {
      await waitFor('replica-2 excluded', async () =>
        [db, destroyedWhileFrozen].every((d) => d.router.metrics().replicas[1]?.excludedFor === 'error'),
      )
      // Checks stuck on the frozen server must not keep destroy() waiting (a hang fails the test).
      await destroyedWhileFrozen.destroy()
      for (let i = 0; i < 10; i++) {
        expect(await readServer(db, names)).not.toBe('replica-2')
      }
    } finally {
      frozen.resume()
    }
    await waitFor('replica-2 rejoins', async () => db.router.metrics().replicas[1]?.status === 'healthy')
  })

  it('with replicaReadTimeoutMs, a read stuck on a frozen replica is abandoned and served by another', async () => {
    const [healthy, stuck] = cluster.replicas
    if (!healthy || !stuck) throw new Error('two replicas expected')
    const lastCandidate: Balancer = {
      pick: (candidates) => candidates[candidates.length - 1] as (typeof candidates)[number],
    }
    // The monitor would not notice in time (long interval): the read's own timeout must act.
    const db = replicatedDb(cluster, {
      balance: lastCandidate,
      // Long enough that the retry on the healthy replica never times out on a loaded machine.
      replicaReadTimeoutMs: 1_500,
      monitorIntervalMs: 600_000,
      outsideContext: 'none',
    })
    dbs.push(db)
    const events: RouteEvent[] = []
    db.router.on('route', (event) => events.push(event))
    await db.router.ready()
    stuck.pause()
    try {
      expect(await readServer(db, names)).toBe('replica-1')
      // The abandoned read's connection on the frozen server does not keep destroy() waiting.
      await db.destroy()
    } finally {
      stuck.resume()
    }
    expect(events.map((e) => `${e.node}:${e.reason}:${e.ok}`)).toEqual([
      'replica-2:read:false',
      'replica-1:retry:true',
    ])
    expect(db.router.metrics().replicas[1]).toMatchObject({ status: 'excluded', excludedFor: 'error' })
  })

  it('a read that gets no connection from a saturated replica pool is served elsewhere; the replica stays in', async () => {
    const [busy, other] = cluster.replicas
    if (!busy || !other) throw new Error('two replicas expected')
    const busyPool = new pg.Pool({ ...busy.connection, max: 1, connectionTimeoutMillis: 100 })
    busyPool.on('error', () => {})
    const firstCandidate: Balancer = { pick: (candidates) => candidates[0] as (typeof candidates)[number] }
    const db = createReplicatedKysely<Database>({
      primary: pool(cluster.primary),
      replicas: [
        { pool: busyPool, name: 'replica-1' },
        { pool: pool(other), name: 'replica-2' },
      ],
      balance: firstCandidate,
      monitorIntervalMs: 600_000,
      outsideContext: 'none',
    })
    dbs.push(db)
    const events: RouteEvent[] = []
    db.router.on('route', (event) => events.push(event))
    await db.router.ready()
    const held = await busyPool.connect() // the pool's only connection, taken by someone else
    try {
      expect(await readServer(db, names)).toBe('replica-2')
    } finally {
      held.release()
    }
    expect(events.map((e) => `${e.node}:${e.reason}:${e.ok}`)).toEqual([
      'replica-1:read:false',
      'replica-2:retry:true',
    ])
    expect(db.router.metrics().replicas[0]).toMatchObject({ status: 'healthy', errors: 0 })
    expect(await readServer(db, names)).toBe('replica-1')
  })

  it('a read whose replica is dead before any result is retried on another replica (deterministic)', async () => {
    const [dead, alive] = cluster.replicas
    if (!dead || !alive) throw new Error('two replicas expected')
    // No idle clients (so no pool error event warns the router) and no monitor tick during the
    // test: the read itself is the first to meet the dead server.
    const pools: pg.Pool[] = []
    const idlePool = (node: typeof dead) => {
      const p = new pg.Pool({ ...node.connection, idleTimeoutMillis: 1 })
      p.on('error', () => {})
      pools.push(p)
      return p
    }
    const firstCandidate: Balancer = { pick: (candidates) => candidates[0] as (typeof candidates)[number] }
    const db = createReplicatedKysely<Database>({
      primary: idlePool(cluster.primary),
      replicas: [
        { pool: idlePool(dead), name: 'replica-1' },
        { pool: idlePool(alive), name: 'replica-2' },
      ],
      balance: firstCandidate,
      monitorIntervalMs: 600_000,
      outsideContext: 'none',
    })
    dbs.push(db)
    const events: RouteEvent[] = []
    db.router.on('route', (event) => events.push(event))
    await db.router.ready()
    await waitFor('the idle clients to close', async () => pools.every((p) => p.totalCount === 0))
    await dead.kill()
    expect(await readServer(db, names)).toBe('replica-2')
    expect(events.map((e) => `${e.node}:${e.reason}:${e.attempt}:${e.ok}`)).toEqual([
      'replica-1:read:1:false',
      'replica-2:retry:2:true',
    ])
    expect(db.router.metrics().retries).toBe(1)
    expect(db.router.metrics().replicas[0]).toMatchObject({ status: 'excluded', excludedFor: 'error' })
    await dead.start()
  })
})
