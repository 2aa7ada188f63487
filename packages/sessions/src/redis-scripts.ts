import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'

/** A Lua script run by EVALSHA, falling back to EVAL once when the server has not cached it. */
export class RedisScript {
  readonly source: string
  readonly sha: string

  constructor(source: string) {
    this.source = source
    this.sha = createHash('sha1').update(source).digest('hex')
  }

  async run(
    redis: Redis | Cluster,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args)
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
      return await redis.eval(this.source, keys.length, ...keys, ...args)
    }
  }
}

/**
 * Creates a session (a login, or an anonymous session's first write) and adds it to the user's
 * index. Refuses to overwrite: a 256-bit collision is not expected, but silently merging two
 * sessions would be the worst possible outcome if it ever happened.
 * KEYS: session, [user index]  ARGV: ttl ms, index ttl ms, storage id, field, value, ...
 */
export const createScript = new RedisScript(`
if redis.call('exists', KEYS[1]) == 1 then return 0 end
redis.call('hset', KEYS[1], unpack(ARGV, 4))
redis.call('pexpire', KEYS[1], ARGV[1])
if KEYS[2] then
  redis.call('sadd', KEYS[2], ARGV[3])
  if redis.call('pttl', KEYS[2]) < tonumber(ARGV[2]) then redis.call('pexpire', KEYS[2], ARGV[2]) end
end
return 1
`)

/**
 * Applies one request's changes field by field: HSET of the fields it set, HDEL of the fields it
 * deleted, nothing else. Fields other requests changed meanwhile are untouched, which is what
 * makes overlapping requests safe. The EXISTS guard keeps a destroyed or regenerated session
 * dead: a slow request that loaded it before the logout cannot resurrect it.
 * KEYS: session  ARGV: ttl ms (0 = keep), number of set pairs, field, value, ..., deleted field, ...
 */
export const updateScript = new RedisScript(`
if redis.call('exists', KEYS[1]) == 0 then return 0 end
local pairs = tonumber(ARGV[2])
if pairs > 0 then redis.call('hset', KEYS[1], unpack(ARGV, 3, 2 + pairs * 2)) end
if #ARGV > 2 + pairs * 2 then redis.call('hdel', KEYS[1], unpack(ARGV, 3 + pairs * 2)) end
if ARGV[1] ~= '0' then redis.call('pexpire', KEYS[1], ARGV[1]) end
return 1
`)

/** KEYS: session, [user index]  ARGV: storage id. Returns 1 when the session existed. */
export const destroyScript = new RedisScript(`
local existed = redis.call('del', KEYS[1])
if KEYS[2] then redis.call('srem', KEYS[2], ARGV[1]) end
return existed
`)

/**
 * Ends every listed session of a user in one atomic step (all keys share the user's slot).
 * KEYS: user index, session, ...  ARGV: storage id, ... (same order as the session keys)
 */
export const destroyManyScript = new RedisScript(`
local ended = 0
for i = 2, #KEYS do
  ended = ended + redis.call('del', KEYS[i])
  redis.call('srem', KEYS[1], ARGV[i - 1])
end
if redis.call('scard', KEYS[1]) == 0 then redis.call('del', KEYS[1]) end
return ended
`)
