import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TestkitError } from '../src/index.js'
import { uniqueName, usePostgres, usePostgresClusters, useRedis } from '../src/vitest.js'

describe('useRedis()', () => {
  const early = useRedis()
  let readTooEarly: unknown
  try {
    void early.redis
  } catch (error) {
    readTooEarly = error
  }
  const env = useRedis()
  afterAll(async () => {
    // This file's own afterAll runs before the helper's: the server still answers here.
    expect(await env.server.command('ping')).toBe('PONG')
  })

  it('gives a client connected to a kit server on a free port (never 6379)', async () => {
    const key = uniqueName('k')
    await env.redis.set(key, 'v')
    expect(await env.redis.get(key)).toBe('v')
    expect(env.server.port).not.toBe(6379)
    expect((await env.server.commandCounts()).set).toBe(1)
    expect(env.redis.options.maxRetriesPerRequest).toBe(1)
  })

  it('throws a typed error when read before beforeAll', () => {
    expect(readTooEarly).toBeInstanceOf(TestkitError)
    expect((readTooEarly as TestkitError).code).toBe('E_TESTKIT_NOT_STARTED')
  })
})

describe('useRedis({ connect })', () => {
  const made: number[] = []
  const env = useRedis({
    connect: (server) => {
      made.push(server.port)
      const redis = new Redis({ port: server.port, maxRetriesPerRequest: null })
      redis.on('error', () => {})
      return redis
    },
  })

  it('hands out the client `connect` made', async () => {
    expect(made).toEqual([env.server.port])
    expect(env.redis.options.maxRetriesPerRequest).toBeNull()
    expect(await env.redis.ping()).toBe('PONG')
  })
})

describe('usePostgres()', () => {
  const pg = usePostgres({ replicas: 1 })
  beforeAll(async () => {
    await pg.primary.query('create table item (id int)')
    await pg.primary.query('insert into item values (1)')
    await pg.cluster.waitForReplication()
  })

  it('starts a primary and streaming replicas', async () => {
    expect(pg.replicas).toHaveLength(1)
    expect(await pg.replicas[0]?.query('select id from item')).toEqual([{ id: 1 }])
    expect(await pg.replicas[0]?.isInRecovery()).toBe(true)
  })
})

describe('usePostgresClusters()', () => {
  const clusters = usePostgresClusters(2)

  it('starts independent clusters', async () => {
    expect(clusters).toHaveLength(2)
    const [a, b] = clusters
    await a?.primary.query('create table only_here (id int)')
    await expect(b?.primary.query('select * from only_here')).rejects.toThrow(/does not exist/)
  })
})

describe('uniqueName()', () => {
  it('appends 8 random hex digits to the prefix', () => {
    const names = new Set(Array.from({ length: 1000 }, () => uniqueName('q-')))
    expect(names.size).toBe(1000)
    for (const name of names) expect(name).toMatch(/^q-[0-9a-f]{8}$/)
  })
})
