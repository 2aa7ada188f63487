import { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RedisCluster, type RedisServer, startRedis, startRedisCluster } from '../src/index.js'

describe('startRedis', () => {
  let redis: RedisServer

  beforeAll(async () => {
    redis = await startRedis()
  })

  afterAll(async () => {
    await redis?.dispose()
  })

  it('serves on its own port and counts commands server-side', async () => {
    expect(redis.port).not.toBe(6379)
    await redis.command('config', 'resetstat')
    const client = new Redis(redis.port)
    await client.set('k', 'v')
    await client.get('k')
    await client.get('k')
    client.disconnect()
    const counts = await redis.commandCounts()
    expect(counts.set).toBe(1)
    expect(counts.get).toBe(2)
  })

  it('a killed server refuses connections and serves again after restart', async () => {
    await redis.kill()
    await expect(redis.command('ping')).rejects.toThrow(/ECONNREFUSED|Connection is closed/)
    await redis.start()
    expect(await redis.command('ping')).toBe('PONG')
  })
})

describe('startRedisCluster', () => {
  let cluster: RedisCluster
  let client: Cluster

  beforeAll(async () => {
    cluster = await startRedisCluster()
    client = new Cluster(cluster.startupNodes, { clusterRetryStrategy: () => 100 })
    client.on('error', () => {})
  })

  afterAll(async () => {
    client?.disconnect()
    await cluster?.stop()
  })

  it('has 3 masters, each with a replica', async () => {
    expect(cluster.nodes).toHaveLength(6)
    expect(await cluster.masters()).toHaveLength(3)
  })

  it('stores keys that hash to different slots on different masters', async () => {
    const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`)
    for (const key of keys) await client.set(key, key)
    const owners = new Set(await Promise.all(keys.map(async (key) => (await cluster.masterFor(key)).port)))
    expect(owners.size).toBe(3)
    for (const key of keys) expect(await client.get(key)).toBe(key)
  })

  it('survives the kill of one master: its replica takes over and keeps the data', async () => {
    const master = await cluster.masterFor('survivor')
    // Written on the master's own connection so that WAIT covers it: the replica has the key
    // before its master dies.
    const direct = new Redis(master.port)
    await direct.set('survivor', 'still-here')
    expect(await direct.wait(1, 5_000)).toBe(1)
    direct.disconnect()
    await master.kill()
    await cluster.waitForHealthy()
    const newMaster = await cluster.masterFor('survivor')
    expect(newMaster.port).not.toBe(master.port)
    expect(await client.get('survivor')).toBe('still-here')
    await client.set('after-failover', 'written')
    expect(await client.get('after-failover')).toBe('written')
  })
})
