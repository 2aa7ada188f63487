import { Kysely } from 'kysely'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import {
  createReplicatedKysely,
  InvalidOptionsError,
  ReadReplicaClosedError,
  ReadReplicaError,
  ReadReplicaOptionsError,
  ReplicatedKysely,
  type ReplicatedKyselyOptions,
  RouterClosedError,
} from '../src/index.js'

// Never connected: option checks happen at construction, before any query.
const primary = new pg.Pool({ host: '127.0.0.1', port: 1 })
const replica = new pg.Pool({ host: '127.0.0.1', port: 1 })

afterAll(async () => {
  await Promise.all([primary.end(), replica.end()])
})

const build = (options: unknown) => () => createReplicatedKysely(options as ReplicatedKyselyOptions)

describe('options are checked at construction with a typed ReadReplicaOptionsError', () => {
  const cases: [string, unknown, string, RegExp][] = [
    ['no options', undefined, '', /options object is required/],
    ['primary missing', {}, 'primary', /primary is required/],
    ['primary as a connection string', { primary: 'postgres://x' }, 'primary', /wrap it in new pg\.Pool/],
    ['primary: empty array', { primary: [] }, 'primary', /empty array/],
    ['replicas not an array', { primary, replicas: replica }, 'replicas', /must be an array/],
    ['replicas containing null', { primary, replicas: [replica, null] }, 'replicas[1]', /got null/],
    ['replica pool not a pool', { primary, replicas: [{ pool: {} }] }, 'replicas[0]', /must be a pg\.Pool/],
    ['outsideContext unknown', { primary, outsideContext: 'always' }, 'outsideContext', /'process', 'none'/],
    ['whenNoReplica unknown', { primary, whenNoReplica: 'throw' }, 'whenNoReplica', /'primary', 'error'/],
    ['tokenSecret empty', { primary, tokenSecret: '' }, 'tokenSecret', /non-empty string/],
    ['rywWaitMs NaN', { primary, rywWaitMs: Number.NaN }, 'rywWaitMs', /finite number/],
    ['readYourWrites not boolean', { primary, readYourWrites: 'yes' }, 'readYourWrites', /true or false/],
    [
      'readOnlyFunctions not a list',
      { primary, readOnlyFunctions: 'f' },
      'readOnlyFunctions',
      /array of function names/,
    ],
    ['balance unknown', { primary, balance: 'fastest' }, 'balance', /one of/],
    ['logger without warn', { primary, logger: { info() {} } }, 'logger', /pino-compatible/],
    ['metrics hook not an object', { primary, metrics: 5 }, 'metrics', /option metrics must be/],
    ['metrics hook member not a function', { primary, metrics: { increment: 1 } }, 'metrics', /increment/],
  ]
  for (const [name, options, option, message] of cases) {
    it(name, () => {
      let caught: unknown
      try {
        build(options)()
      } catch (error) {
        caught = error
      }
      expect(caught).toBeInstanceOf(ReadReplicaOptionsError)
      expect(caught).toMatchObject({
        code: 'E_REPLICA_INVALID_OPTIONS',
        message: expect.stringMatching(message),
      })
      if (option) expect((caught as ReadReplicaOptionsError).context.option).toBe(option)
    })
  }

  it('valid options construct without touching a server', async () => {
    const db = build({ primary: { pool: primary, name: 'p' }, replicas: [replica], tokenSecret: 's' })()
    expect(db.router.metrics().replicas).toHaveLength(1)
  })
})

describe('close(): idempotent, then every call throws ReadReplicaClosedError', () => {
  it('queries, transactions and router calls after close() are refused with a typed error', async () => {
    const own = new pg.Pool({ host: '127.0.0.1', port: 1 })
    const db = build({ primary: own, replicas: [] })() as ReturnType<
      typeof createReplicatedKysely<{ t: { id: number } }>
    >
    await Promise.all([db.close(), db.close()])
    await db.destroy() // Kysely's name for the same, still works
    await expect(db.selectFrom('t').selectAll().execute()).rejects.toMatchObject({
      name: 'ReadReplicaClosedError',
      code: 'E_REPLICA_CLOSED',
      context: { method: 'executeQuery' },
    })
    await expect(db.transaction().execute(async () => {})).rejects.toBeInstanceOf(ReadReplicaClosedError)
    await expect(db.router.addReplica(replica)).rejects.toMatchObject({ context: { method: 'addReplica' } })
    await expect(db.router.reloadFunctions()).rejects.toBeInstanceOf(ReadReplicaError)
  })

  it('the deprecated names still refer to the renamed classes', () => {
    expect(InvalidOptionsError).toBe(ReadReplicaOptionsError)
    expect(RouterClosedError).toBe(ReadReplicaClosedError)
    expect(new ReadReplicaClosedError('x')).toBeInstanceOf(ReadReplicaError)
  })
})

describe('ReplicatedKysely: an interface made by the factory, still a Kysely', () => {
  it('createReplicatedKysely() returns an instance of Kysely and of the deprecated ReplicatedKysely constructor', async () => {
    const db = createReplicatedKysely({ primary: new pg.Pool({ host: '127.0.0.1', port: 1 }) })
    expect(db).toBeInstanceOf(Kysely)
    expect(db).toBeInstanceOf(ReplicatedKysely)
    expect(typeof db.primary().selectFrom).toBe('function')
    await db.close()
  })

  it('new ReplicatedKysely(options) still works (deprecated) and checks options the same way', async () => {
    expect(() => new ReplicatedKysely({ primary: [] })).toThrow(ReadReplicaOptionsError)
    const db = new ReplicatedKysely<{ item: { id: number } }>({
      primary: new pg.Pool({ host: '127.0.0.1', port: 1 }),
    })
    expect(db).toBeInstanceOf(Kysely)
    expect(db.selectFrom('item').select('id').compile().sql).toBe('select "id" from "item"')
    await db.close()
    await expect(db.selectFrom('item').select('id').execute()).rejects.toThrow(ReadReplicaClosedError)
  })
})
