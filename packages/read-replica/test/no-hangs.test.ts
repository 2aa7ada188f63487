import net from 'node:net'
import { type PostgresCluster, waitFor } from '@scale/testkit'
import { sql } from 'kysely'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  type Balancer,
  createReplicatedKysely,
  PrimaryConnectionLostError,
  PrimaryUnreachableError,
  QueryTimeoutError,
  type ReplicatedKysely,
  type RouteEvent,
} from '../src/index.js'
import { type Database, useSeededReplicas } from './helpers.js'

const port = sql<number>`inet_server_port()`

/** A pool with pg's defaults (no connectionTimeoutMillis): the router's own defaults must bound it. */
function defaultPool(connection: pg.PoolConfig): pg.Pool {
  const p = new pg.Pool(connection)
  p.on('error', () => {})
  return p
}

describe('defaults never hang; node failures are typed or retried elsewhere', () => {
  const seeded = useSeededReplicas()
  let cluster: PostgresCluster
  let names: Map<number, string>
  let blackhole: net.Server
  const sockets = new Set<net.Socket>()
  const dbs: ReplicatedKysely<Database>[] = []
  const open = (db: ReplicatedKysely<Database>) => {
    dbs.push(db)
    return db
  }

  beforeAll(async () => {
    cluster = seeded.cluster
    names = seeded.names
    // Accepts TCP connections and never answers: an unresponsive server.
    blackhole = net.createServer((socket) => {
      sockets.add(socket)
      socket.on('error', () => {})
    })
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve))
  })

  afterEach(async () => {
    for (const node of cluster.nodes) {
      node.resume()
      if (!node.running) await node.start()
    }
  })

  afterAll(async () => {
    await Promise.all(dbs.map((db) => db.destroy()))
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => blackhole?.close(resolve))
  })

  const readServer = async (db: ReplicatedKysely<Database>) => {
    const row = await db
      .selectFrom('item')
      .select(port.as('server'))
      .where('id', '=', 1)
      .executeTakeFirstOrThrow()
    return names.get(row.server)
  }

  it('an unresponsive replica (accepts TCP, never answers), used right after construction: every read is served', async () => {
    const address = blackhole.address() as net.AddressInfo
    const [replica] = cluster.replicas
    if (!replica) throw new Error('a replica expected')
    const db = open(
      createReplicatedKysely<Database>({
        primary: defaultPool(cluster.primary.connection),
        replicas: [
          {
            pool: defaultPool({ ...replica.connection, host: '127.0.0.1', port: address.port }),
            name: 'blackhole',
          },
          { pool: defaultPool(replica.connection), name: 'replica-1' },
        ],
        balance: 'round-robin',
        outsideContext: 'none',
      }),
    )
    // no ready(): the quick start's way
    const served = await Promise.all(Array.from({ length: 10 }, () => readServer(db)))
    expect(served.every((name) => name === 'replica-1' || name === 'primary')).toBe(true)
    await waitFor('blackhole excluded', async () => db.router.metrics().replicas[0]?.status === 'excluded')
  })

  it('a replica with a wrong database name: early reads are retried elsewhere, the replica excluded', async () => {
    const [good, bad] = cluster.replicas
    if (!good || !bad) throw new Error('two replicas expected')
    const db = open(
      createReplicatedKysely<Database>({
        primary: defaultPool(cluster.primary.connection),
        replicas: [
          { pool: defaultPool({ ...bad.connection, database: 'no_such_database' }), name: 'wrong-db' },
          { pool: defaultPool(good.connection), name: 'replica-1' },
        ],
        balance: 'round-robin',
        outsideContext: 'none',
      }),
    )
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => readServer(db)))
    expect(results.filter((r) => r.status === 'rejected')).toEqual([])
    expect(db.router.metrics().replicas[0]).toMatchObject({ status: 'excluded', excludedFor: 'error' })
  })

  it('reads running on a replica that gets excluded move to another node (no per-read deadline at all)', async () => {
    const [, frozen] = cluster.replicas
    if (!frozen) throw new Error('two replicas expected')
    const lastCandidate: Balancer = {
      pick: (candidates) => candidates[candidates.length - 1] as (typeof candidates)[number],
    }
    const db = open(
      createReplicatedKysely<Database>({
        primary: defaultPool(cluster.primary.connection),
        replicas: cluster.replicas.map((r) => ({ pool: defaultPool(r.connection), name: r.name })),
        balance: lastCandidate,
        replicaReadTimeoutMs: 0, // only the exclusion can rescue these reads
        checkTimeoutMs: 1_000,
        monitorIntervalMs: 200,
        outsideContext: 'none',
      }),
    )
    const events: RouteEvent[] = []
    db.router.on('route', (event) => events.push(event))
    await db.router.ready()
    await readServer(db) // a warm connection to replica-2
    frozen.pause()
    try {
      const served = await Promise.all(Array.from({ length: 5 }, () => readServer(db)))
      expect(served.every((name) => name !== 'replica-2')).toBe(true)
    } finally {
      frozen.resume()
    }
    const moved = events.filter((e) => e.node === 'replica-2' && !e.ok)
    expect(moved.length).toBeGreaterThan(0)
    // each read cut off on replica-2 finished elsewhere (replica-1, or the primary if the busy
    // machine made replica-1 miss a check too)
    expect(events.filter((e) => e.reason === 'retry' && e.ok && e.node !== 'replica-2').length).toBe(
      moved.length,
    )
  })

  it('a hung primary (SIGSTOP): a write gets a typed QueryTimeoutError, a new connection a typed PrimaryUnreachableError', async () => {
    const db = open(
      createReplicatedKysely<Database>({
        primary: defaultPool(cluster.primary.connection),
        replicas: cluster.replicas.map((r) => ({ pool: defaultPool(r.connection), name: r.name })),
        queryTimeoutMs: 1_000,
        connectTimeoutMs: 1_000,
        checkTimeoutMs: 1_000,
        outsideContext: 'none',
      }),
    )
    await db.router.ready()
    await db.insertInto('item').values({ value: 'warm' }).execute() // one idle primary connection
    cluster.primary.pause()
    try {
      const first = db.insertInto('item').values({ value: 'hung' }).execute()
      const second = db.insertInto('item').values({ value: 'hung-2' }).execute()
      const errors = await Promise.allSettled([first, second])
      const reasons = errors.map((r) => (r.status === 'rejected' ? r.reason : undefined))
      for (const reason of reasons) {
        const typed = reason instanceof QueryTimeoutError || reason instanceof PrimaryUnreachableError
        expect(typed, String(reason)).toBe(true)
      }
      expect(reasons.some((r) => r instanceof QueryTimeoutError && r.context.write === true)).toBe(true)
      // reads without a position are still served by the replicas
      expect(await readServer(db)).toMatch(/^replica-/)
    } finally {
      cluster.primary.resume()
    }
  })

  it('primary stopped: the write in flight gets PrimaryConnectionLostError; reads whose token a replica reached go on', async () => {
    const db = open(
      createReplicatedKysely<Database>({
        primary: defaultPool(cluster.primary.connection),
        replicas: cluster.replicas.map((r) => ({ pool: defaultPool(r.connection), name: r.name })),
        // Generous: a healthy replica's check slowed by a loaded machine must not exclude it (a
        // stopped primary refuses at once, so this does not slow the test).
        checkTimeoutMs: 2_000,
        monitorIntervalMs: 100,
      }),
    )
    await db.router.ready()
    const token = await db.router.run(undefined, async () => {
      await db.insertInto('item').values({ value: 'before-stop' }).execute()
      return db.router.token()
    })
    await cluster.waitForReplication()
    const inFlight = db
      .insertInto('item')
      .values({ value: sql<string>`(select pg_sleep(30)::text || 'slow')` })
      .execute()
    inFlight.catch(() => {}) // asserted below, after the stop
    await waitFor('the slow write runs', async () => {
      const rows = await cluster.primary.query(
        `select 1 from pg_stat_activity where query like '%pg_sleep(30)%' and pid <> pg_backend_pid()`,
      )
      return rows.length > 0
    })
    await cluster.primary.stop()
    await expect(inFlight).rejects.toBeInstanceOf(PrimaryConnectionLostError)
    await expect(inFlight).rejects.toMatchObject({ context: { write: true } })
    // reads with a token the replicas have replayed, and reads without one: served by replicas
    const failures: unknown[] = []
    for (let i = 0; i < 20; i++) {
      await db.router
        .run(i % 2 === 0 ? token : undefined, async () => {
          const server = await readServer(db)
          if (!server?.startsWith('replica-')) failures.push(server)
        })
        .catch((error: unknown) => failures.push(error))
    }
    expect(failures).toEqual([])
    await expect(db.insertInto('item').values({ value: 'down' }).execute()).rejects.toBeInstanceOf(
      PrimaryUnreachableError,
    )
    // A router created while the primary is down: ready() resolves (the function catalog comes
    // from a replica), reads, also those calling functions, are served by replicas; a write is typed.
    const late = open(
      createReplicatedKysely<Database>({
        primary: defaultPool(cluster.primary.connection),
        replicas: cluster.replicas.map((r) => ({ pool: defaultPool(r.connection), name: r.name })),
        checkTimeoutMs: 2_000,
        connectTimeoutMs: 2_000,
      }),
    )
    await late.router.ready()
    expect(await readServer(late)).toMatch(/^replica-/) // calls inet_server_port()
    await expect(late.insertInto('item').values({ value: 'late' }).execute()).rejects.toBeInstanceOf(
      PrimaryUnreachableError,
    )
  })
})
