import { createServer, type Socket, connect as tcpConnect } from 'node:net'
import { usePostgresClusters } from '@scale/testkit/vitest'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createShardedKysely,
  createShardMap,
  type NotificationClient,
  postgresMapStore,
  ShardMap,
  ShardMapInvalidError,
  ShardMapStaleError,
  type ShardMapStore,
} from '../src/index.js'
import { kysely, useUnhandledRejections, waitUntil } from './helpers.js'

// The first map load (and the LISTEN it opens) is bounded by mapLoadTimeoutMs like every later
// load: a hung control database at start-up fails createShardedKysely() with a typed error, leaves
// nothing running, and a later call succeeds once the store answers.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * A TCP relay to a server on loopback whose connections open so far can be cut off silently
 * (data dropped both ways, no FIN or RST): a network path that died. New connections pass.
 */
async function startRelay(port: number) {
  const pairs: { client: Socket; upstream: Socket; dead: boolean }[] = []
  const server = createServer((client) => {
    const pair = { client, upstream: tcpConnect(port, '127.0.0.1'), dead: false }
    pairs.push(pair)
    client.on('data', (data) => {
      if (!pair.dead) pair.upstream.write(data)
    })
    pair.upstream.on('data', (data) => {
      if (!pair.dead) client.write(data)
    })
    for (const socket of [client, pair.upstream]) {
      socket.on('error', () => {})
      socket.on('close', () => {
        client.destroy()
        pair.upstream.destroy()
      })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    cutExisting() {
      for (const pair of pairs) pair.dead = true
    },
    async close() {
      for (const pair of pairs) {
        pair.client.destroy()
        pair.upstream.destroy()
      }
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

describe('start-up map load against a hung (SIGSTOPped) control database', () => {
  // [control, s1]
  const clusters = usePostgresClusters(2)
  let control: Kysely<unknown>
  let shards: Record<string, Kysely<unknown>>
  const unhandled = useUnhandledRejections()

  // router.close() destroys the shards' Kysely instances: each router gets fresh ones.
  const openShards = () => {
    shards = { s1: kysely(clusters[1]!.primary) }
    return shards
  }

  beforeAll(() => {
    control = kysely(clusters[0]!.primary)
  })
  const controlAnswers = () =>
    waitUntil('the control database to answer', () =>
      sql`select 1`.execute(control).then(
        () => true,
        () => false,
      ),
    )
  afterAll(async () => {
    await control.destroy()
  })
  afterEach(() => {
    clusters[0]?.primary.resume()
  })

  it('rejects with ShardMapStaleError within mapLoadTimeoutMs, and a later call routes once the store answers', {
    timeout: 30_000,
  }, async () => {
    const store = postgresMapStore({ db: control, table: 'startup_hung_map' })
    await store.save(createShardMap({ shards: ['s1'] }))
    const primary = clusters[0]!.primary
    const options = { map: store, mapLoadTimeoutMs: 300, refreshIntervalMs: 50 }
    const s1 = openShards()

    primary.pause()
    const failures: unknown[] = []
    for (let attempt = 0; attempt < 2; attempt++)
      failures.push(await createShardedKysely({ ...options, shards: s1 }).catch((error: unknown) => error))
    for (const error of failures) {
      expect(error).toBeInstanceOf(ShardMapStaleError)
      expect((error as ShardMapStaleError).context).toMatchObject({
        startup: true,
        step: 'load',
        timedOut: true,
        mapLoadTimeoutMs: 300,
      })
      expect((error as ShardMapStaleError).message).toMatch(/at start-up/)
    }
    // The shards were not touched by the failed starts: still usable while the store is down.
    const { rows: direct } = await sql<{ one: number }>`select 1 as one`.execute(s1.s1!)
    expect(direct).toEqual([{ one: 1 }])

    primary.resume()
    // Right after SIGCONT the server may take a moment on a loaded machine: the recovering calls
    // below keep the 300 ms deadline, so first wait until it answers at all.
    await controlAnswers()
    const db = await createShardedKysely({ ...options, shards: s1 })
    try {
      expect(db.map.epoch).toBe(1)
      const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db.forKey(42))
      expect(rows).toEqual([{ one: 1 }])

      // A later explicit refresh() against the hung store is typed too (it was a plain Error).
      primary.pause()
      const late = await db.refresh().catch((error: unknown) => error)
      expect(late).toBeInstanceOf(ShardMapStaleError)
      expect((late as ShardMapStaleError).context).toMatchObject({ epoch: 1, timedOut: true })
      primary.resume()
      await controlAnswers()
      expect((await db.refresh()).epoch).toBe(1)
    } finally {
      primary.resume()
      await db.close()
    }
    expect(unhandled()).toEqual([])
  })

  it('a LISTEN that hangs at start-up rejects (step listen), starts no polling, and its connection is closed once the store answers', {
    timeout: 30_000,
  }, async () => {
    const primary = clusters[0]!.primary
    const table = 'startup_listen_map'
    let opened = 0
    let ended = 0
    const listen = async (): Promise<NotificationClient> => {
      opened++
      const client = new pg.Client(primary.connection)
      client.on('error', () => {})
      await client.connect()
      return {
        query: (text) => client.query(text),
        on: (event: 'notification' | 'error', listener: (value: never) => void) =>
          client.on(event as 'notification', listener as () => void),
        end: async () => {
          ended++
          await client.end()
        },
      } as NotificationClient
    }
    const store = postgresMapStore({ db: control, table, listen })
    await store.save(createShardMap({ shards: ['s1'] }))
    // The map loads, then the control database hangs before LISTEN is open.
    let loads = 0
    const hangsAfterLoad: ShardMapStore = {
      load: async () => {
        loads++
        const map = await store.load()
        primary.pause()
        return map
      },
      save: (map) => store.save(map),
      watch: (onChange) => (store.watch as NonNullable<ShardMapStore['watch']>)(onChange),
    }

    const first = openShards()
    const error = await createShardedKysely({
      shards: first,
      map: hangsAfterLoad,
      mapLoadTimeoutMs: 300,
      refreshIntervalMs: 50,
    }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ShardMapStaleError)
    expect((error as ShardMapStaleError).context).toMatchObject({
      startup: true,
      step: 'listen',
      timedOut: true,
    })
    // No poller was left behind by the failed start: six polling intervals pass, no load.
    const loadsAtFailure = loads
    await sleep(300)
    expect(loads).toBe(loadsAtFailure)
    await first.s1?.destroy()

    primary.resume()
    // The LISTEN connection that opens late is ended at once: none is left on the server.
    await waitUntil('the late LISTEN client to be ended', () => ended === opened)
    await waitUntil('no LISTEN backend on the control database', async () => {
      const { rows } = await sql<{
        n: number
      }>`select count(*)::int as n from pg_stat_activity where query ilike 'listen %'`.execute(control)
      return rows[0]?.n === 0
    })
    expect(opened).toBe(1)

    // Recovery: the same store starts a router that follows NOTIFY alone.
    const db = await createShardedKysely({ shards: openShards(), map: store, refreshIntervalMs: 0 })
    try {
      await store.save(createShardMap({ shards: ['s1'], epoch: 2 }))
      await waitUntil('epoch 2 over NOTIFY', () => db.map.epoch === 2)
    } finally {
      await db.close()
    }
    expect(ended).toBe(opened)
    expect(unhandled()).toEqual([])
  })

  it('a control connection whose network path died during the first load does not hold the next start: it uses a new connection', {
    timeout: 30_000,
  }, async () => {
    const primary = clusters[0]!.primary
    const table = 'startup_dead_path_map'
    // The map is saved by another process (a mover, the CLI): this router's store never created the table.
    await postgresMapStore({ db: control, table }).save(createShardMap({ shards: ['s1'] }))
    const relay = await startRelay(primary.connection.port)
    const relayedPool = new pg.Pool({ ...primary.connection, host: '127.0.0.1', port: relay.port, max: 5 })
    relayedPool.on('error', () => {})
    // A connection that drops while a query runs emits 'error' on the checked-out client (Kysely
    // does not listen there): without a listener, relay.close() below would crash the process.
    relayedPool.on('connect', (client) => client.on('error', () => {}))
    const relayed = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: relayedPool }) })
    const store = postgresMapStore({ db: relayed, table })
    const s1 = openShards()
    let db: Awaited<ReturnType<typeof createShardedKysely>> | undefined
    try {
      await sql`select 1`.execute(relayed) // one idle pooled connection through the relay
      relay.cutExisting()
      const error = await createShardedKysely({ shards: s1, map: store, mapLoadTimeoutMs: 300 }).catch(
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(ShardMapStaleError)
      expect((error as ShardMapStaleError).context).toMatchObject({
        startup: true,
        step: 'load',
        timedOut: true,
      })
      // The control database is reachable again over a new connection; the dead one never answers
      // (a generous deadline: reusing the dead connection would still fail it).
      db = await createShardedKysely({ shards: s1, map: store, mapLoadTimeoutMs: 5_000 })
      expect(db.map.epoch).toBe(1)
    } finally {
      await db?.close()
      if (!db) await s1.s1?.destroy()
      await relay.close()
      await relayed.destroy()
    }
    expect(unhandled()).toEqual([])
  })

  it('a LISTEN statement that fails at start-up rejects typed and closes the LISTEN client', async () => {
    let ended = 0
    const refused = new Error('permission denied')
    const store = postgresMapStore({
      db: control,
      table: 'startup_listen_refused_map',
      listen: async () => ({
        query: () => Promise.reject(refused),
        on: () => undefined,
        end: async () => {
          ended++
        },
      }),
    })
    await store.save(createShardMap({ shards: ['s1'] }))
    const s1 = openShards()
    const error = await createShardedKysely({ shards: s1, map: store }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ShardMapStaleError)
    expect((error as ShardMapStaleError).context).toMatchObject({
      startup: true,
      step: 'listen',
      timedOut: false,
    })
    expect((error as ShardMapStaleError).cause).toBe(refused)
    expect(ended).toBe(1)
    await s1.s1?.destroy()
    expect(unhandled()).toEqual([])
  })

  it('a store that fails at start-up gives ShardMapStaleError with the cause; a map that does not parse stays ShardMapInvalidError', async () => {
    const refused = new Error('connect ECONNREFUSED')
    const failing: ShardMapStore = {
      load: () => Promise.reject(refused),
      save: async () => {},
    }
    const s1 = openShards()
    const error = await createShardedKysely({ shards: s1, map: failing }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ShardMapStaleError)
    expect((error as ShardMapStaleError).context).toMatchObject({
      startup: true,
      step: 'load',
      timedOut: false,
    })
    expect((error as ShardMapStaleError).cause).toBe(refused)

    const garbled: ShardMapStore = { load: async () => ShardMap.parse('{'), save: async () => {} }
    await expect(createShardedKysely({ shards: s1, map: garbled })).rejects.toBeInstanceOf(
      ShardMapInvalidError,
    )
    await s1.s1?.destroy()
    expect(unhandled()).toEqual([])
  })
})
