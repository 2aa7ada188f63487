import { Queue, type Telemetry } from 'bullmq'
import { type Cluster, Redis, type RedisOptions } from 'ioredis'
import { JobsOptionsError } from './errors.js'

/**
 * Where the queues live: the user's ioredis `Redis` or `Cluster` instance (reused as is), or
 * options for a `Redis` this package creates and closes. Workers need an instance created with
 * `maxRetriesPerRequest: null` (BullMQ refuses others for its blocking connection).
 */
export type RedisConnection = Redis | Cluster | RedisOptions

/** The default key prefix. The braces are a Redis Cluster hash tag: every key of every queue lands on one slot. */
export const DEFAULT_PREFIX = '{jobs}'

/** @internal */
export function isRedisInstance(connection: RedisConnection): connection is Redis | Cluster {
  return (
    typeof (connection as Redis).duplicate === 'function' &&
    typeof (connection as Redis).pipeline === 'function'
  )
}

/** @internal */
export function isCluster(connection: RedisConnection): boolean {
  return isRedisInstance(connection) && (connection as Cluster).isCluster === true
}

/**
 * @internal A client for this package's own commands (dead letters, counters, signal reads):
 * the user's instance when given one, else a new `Redis` that the caller must close.
 */
export function commandClient(connection: RedisConnection): { client: Redis | Cluster; owned: boolean } {
  if (isRedisInstance(connection)) return { client: connection, owned: false }
  const client = new Redis({ ...connection, lazyConnect: false })
  // Errors surface on the commands that fail; an unhandled 'error' event would crash the process.
  client.on('error', () => {})
  return { client, owned: true }
}

/** @internal BullMQ's own `connection` option for a queue or worker. */
export function bullConnection(
  connection: RedisConnection,
  blocking: boolean,
): Redis | Cluster | RedisOptions {
  if (isRedisInstance(connection)) return connection
  return blocking ? { ...connection, maxRetriesPerRequest: null } : connection
}

/**
 * @internal A BullMQ `Queue` for adds and reads. Its 'error' event is swallowed: connection errors
 * reach callers through the commands that fail, and an unhandled 'error' event would crash the process.
 */
export function openQueue(
  name: string,
  connection: RedisConnection,
  prefix: string,
  telemetry?: Telemetry,
): Queue {
  const queue = new Queue(name, {
    connection: bullConnection(connection, false),
    prefix,
    ...(telemetry && { telemetry }),
  })
  queue.on('error', () => {})
  return queue
}

/** The Redis key prefix option every factory of this package takes. */
export interface KeyPrefixOptions {
  /**
   * Redis key prefix of every queue; producers, workers, relays and readers of a queue must agree.
   * Keep a `{hash tag}` for Redis Cluster.
   * @default '{jobs}'
   */
  keyPrefix?: string
  /** @deprecated use keyPrefix; removed in the next minor */
  prefix?: string
}

/**
 * @internal The key prefix the options ask for, checked. On a cluster, BullMQ's Lua scripts touch
 * several keys of a queue in one call, so all of them must hash to one slot: the prefix must carry
 * a `{hash tag}`.
 */
export function keyPrefixOf(connection: RedisConnection, options: KeyPrefixOptions): string {
  const option = options.keyPrefix === undefined && options.prefix !== undefined ? 'prefix' : 'keyPrefix'
  const prefix = options.keyPrefix ?? options.prefix ?? DEFAULT_PREFIX
  if (prefix.includes(':')) throw new JobsOptionsError(option, `${option} "${prefix}" must not contain ':'`)
  if (isCluster(connection) && !/\{[^}]+\}/.test(prefix)) {
    throw new JobsOptionsError(
      option,
      `${option} "${prefix}" has no hash tag; on Redis Cluster use one like "{jobs}" so each queue's keys share a slot`,
    )
  }
  return prefix
}

/** @internal `<prefix>:<queue>:<suffix>`, the layout BullMQ uses, so our keys sit beside the queue's. */
export function queueKey(prefix: string, queue: string, suffix: string): string {
  return `${prefix}:${queue}:${suffix}`
}

/** @internal The pub/sub channel on which workers of a queue hear cancels. */
export function cancelChannel(prefix: string, queue: string): string {
  return queueKey(prefix, queue, 'scale-cancel')
}
