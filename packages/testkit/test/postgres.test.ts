import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PostgresCluster, startPostgres, startPostgresClusters } from '../src/index.js'

describe('startPostgres with streaming replicas', () => {
  let cluster: PostgresCluster

  beforeAll(async () => {
    cluster = await startPostgres({ replicas: 2 })
    await cluster.primary.query('create table kit_rows (id int primary key, label text)')
  })

  afterAll(async () => {
    await cluster?.stop()
  })

  it('runs every node on its own loopback port, never the standard one', async () => {
    const ports = cluster.nodes.map((node) => node.port)
    expect(new Set(ports).size).toBe(3)
    expect(ports).not.toContain(5432)
    for (const node of cluster.nodes) {
      const [row] = await node.query<{ port: number }>('select inet_server_port() as port')
      expect(row?.port).toBe(node.port)
    }
  })

  it('makes the primary writable and the replicas hot standbys', async () => {
    expect(await cluster.primary.isInRecovery()).toBe(false)
    for (const replica of cluster.replicas) expect(await replica.isInRecovery()).toBe(true)
    await expect(cluster.replicas[0]!.query('insert into kit_rows values (0, $1)', ['x'])).rejects.toThrow(
      /read-only transaction/,
    )
  })

  it('streams a row inserted on the primary to every replica', async () => {
    await cluster.primary.query('insert into kit_rows values (1, $1)', ['streamed'])
    await cluster.waitForReplication()
    for (const replica of cluster.replicas) {
      const rows = await replica.query<{ label: string }>('select label from kit_rows where id = 1')
      expect(rows).toEqual([{ label: 'streamed' }])
    }
  })

  it('delays replay with recovery_min_apply_delay: invisible at once, visible after the delay', async () => {
    const replica = cluster.replicas[0]!
    await replica.setApplyDelay(1_000)
    try {
      await cluster.primary.query('insert into kit_rows values (2, $1)', ['delayed'])
      const soon = await replica.query('select 1 from kit_rows where id = 2')
      expect(soon).toHaveLength(0)
      // The undelayed replica shows that the row was committed and shipped.
      await cluster.waitForReplication().catch(() => {})
      await sleep(1_200)
      const later = await replica.query('select 1 from kit_rows where id = 2')
      expect(later).toHaveLength(1)
    } finally {
      await replica.setApplyDelay(0)
    }
  })

  it('a killed replica refuses connections, serves again after restart and catches up', async () => {
    const replica = cluster.replicas[1]!
    await replica.kill()
    expect(replica.running).toBe(false)
    await expect(replica.query('select 1')).rejects.toThrow(/ECONNREFUSED/)
    await cluster.primary.query('insert into kit_rows values (3, $1)', ['while-down'])
    await replica.start()
    await cluster.waitForReplication()
    expect(await replica.query('select 1 from kit_rows where id = 3')).toHaveLength(1)
  })

  it('a paused replica answers nothing until resumed, on new and on open connections', async () => {
    const replica = cluster.replicas[1]!
    // Postgres backends sit in process groups of their own, so this proves pause reaches them too.
    const open = new pg.Client(replica.connection)
    await open.connect()
    try {
      replica.pause()
      const onNew = replica.query('select 1 as one')
      const onOpen = open.query('select 2 as two')
      const outcome = await Promise.race([
        Promise.any([onNew, onOpen]).then(() => 'answered'),
        sleep(1_000).then(() => 'silent'),
      ])
      expect(outcome).toBe('silent')
      replica.resume()
      expect(await onNew).toEqual([{ one: 1 }])
      expect((await onOpen).rows).toEqual([{ two: 2 }])
    } finally {
      replica.resume()
      await open.end()
    }
  })

  it('kill ends the connections already open to the server at once', async () => {
    const replica = cluster.replicas[1]!
    const open = new pg.Client(replica.connection)
    open.on('error', () => {})
    await open.connect()
    const ended = new Promise((resolve) => open.once('end', resolve))
    await replica.kill()
    // Every backend was SIGKILLed with the postmaster: none is left to answer.
    await ended
    await expect(open.query('select 1')).rejects.toThrow()
    await replica.start()
    await cluster.waitForReplication()
  })

  it('promotes a replica to a writable primary', async () => {
    const replica = cluster.replicas[1]!
    await replica.promote()
    expect(await replica.isInRecovery()).toBe(false)
    await replica.query('insert into kit_rows values (4, $1)', ['on-promoted'])
    expect(await replica.query('select 1 from kit_rows where id = 4')).toHaveLength(1)
    // A promoted node has left the old timeline: the primary never sees its writes.
    expect(await cluster.primary.query('select 1 from kit_rows where id = 4')).toHaveLength(0)
  })
})

describe('startPostgresClusters', () => {
  it('starts independent primaries that share nothing', async () => {
    const clusters = await startPostgresClusters(2)
    try {
      const [a, b] = clusters.map((c) => c.primary)
      await a!.query('create table only_here (id int)')
      await expect(b!.query('select * from only_here')).rejects.toThrow(/does not exist/)
      expect(a!.port).not.toBe(b!.port)
    } finally {
      await Promise.all(clusters.map((c) => c.stop()))
    }
  })
})
