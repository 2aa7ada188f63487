import type { RedisServer } from '@scale/testkit'

/** Commands that change data; anything else (HGETALL, INFO, CONFIG) is a read or admin call. */
const WRITE_COMMANDS = new Set([
  'set',
  'setex',
  'psetex',
  'hset',
  'hmset',
  'hdel',
  'hsetnx',
  'hincrby',
  'del',
  'unlink',
  'expire',
  'pexpire',
  'expireat',
  'pexpireat',
  'sadd',
  'srem',
  'eval',
  'evalsha',
  'eval_ro',
  'evalsha_ro',
  'multi',
  'exec',
  'getex',
  'persist',
  'rename',
  'incr',
  'incrby',
])

/** Server-side write-command counts since the last `CONFIG RESETSTAT`. */
export async function writeCounts(redis: RedisServer): Promise<Record<string, number>> {
  const counts = await redis.commandCounts()
  return Object.fromEntries(Object.entries(counts).filter(([name]) => WRITE_COMMANDS.has(name)))
}

/** Server-side counts of session commands (admin commands of the test itself left out). */
export async function sessionCommandCounts(redis: RedisServer): Promise<Record<string, number>> {
  const counts = await redis.commandCounts()
  return Object.fromEntries(
    Object.entries(counts).filter(
      ([name]) =>
        !['info', 'config', 'ping', 'dbsize', 'keys', 'scan', 'client'].includes(
          name.split('|')[0] as string,
        ),
    ),
  )
}

export async function resetCounts(redis: RedisServer): Promise<void> {
  await redis.command('config', 'resetstat')
}
