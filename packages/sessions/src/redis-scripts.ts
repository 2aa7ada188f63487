import { RedisScript } from '@scale/ioredis-coalesce'

/** A Lua script run by EVALSHA, falling back to EVAL when the server has not cached it (shared with @scale/read-through-cache). */
export { RedisScript }

// A user's records carry the revocation epoch they were created under (`~r`). Records written
// before the epoch existed have no `~r`: they count as epoch '0' while they exist. A record is
// live only with its expiry field (`~x`): the one-HSET write of a session that ended meanwhile
// leaves, for one round trip, a stray hash without it (see RedisSessionStore#setFields), and
// that stray must never pass for the session it replaced.
const STAMPED_EPOCH = `
local function stamped_epoch(key)
  local stamp = redis.call('hmget', key, '~r', '~x')
  if not stamp[2] then return false end
  return stamp[1] or '0'
end
local function extend(key, ms)
  if redis.call('pttl', key) < tonumber(ms) then redis.call('pexpire', key, ms) end
end
-- Keeps at most cap sessions in the user's index, ending the least recently used (by ~t) first;
-- never the one just stored. Runs only at a login or rotation, and only with a cap set.
local function enforce_cap(index, stem, cap, keep)
  cap = tonumber(cap)
  if cap <= 0 or redis.call('scard', index) <= cap then return end
  local live = {}
  for _, id in ipairs(redis.call('smembers', index)) do
    local seen = redis.call('hget', stem .. id, '~t')
    if not seen then
      redis.call('srem', index, id)
    elseif id ~= keep then
      table.insert(live, { id, tonumber(seen) })
    end
  end
  table.sort(live, function(a, b) return a[2] < b[2] end)
  for i = 1, #live + 1 - cap do
    redis.call('del', stem .. live[i][1])
    redis.call('srem', index, live[i][1])
  end
end
`

/**
 * Creates a session (a login, or an anonymous session's first write) and adds it to the user's
 * index, stamped with the user's current revocation epoch. Refuses to overwrite: a 256-bit
 * collision is not expected, but silently merging two sessions would be the worst possible
 * outcome if it ever happened.
 * KEYS: session, [user index, revocation epoch]
 * ARGV: ttl ms, lifetime ms, storage id, sessions-per-user cap (0 = none), session key stem, field, value, ...
 * Returns 1 created, -1 collision.
 */
export const createScript = new RedisScript(`${STAMPED_EPOCH}
if redis.call('exists', KEYS[1]) == 1 then return -1 end
if KEYS[2] then
  local epoch = redis.call('get', KEYS[3])
  -- The epoch must outlive every session stamped with it, or a reset to 0 would end them.
  if epoch then extend(KEYS[3], ARGV[2]) end
  redis.call('hset', KEYS[1], '~r', epoch or '0', unpack(ARGV, 6))
  redis.call('pexpire', KEYS[1], ARGV[1])
  redis.call('sadd', KEYS[2], ARGV[3])
  extend(KEYS[2], ARGV[2])
  enforce_cap(KEYS[2], ARGV[5], ARGV[4], ARGV[3])
else
  redis.call('hset', KEYS[1], unpack(ARGV, 6))
  redis.call('pexpire', KEYS[1], ARGV[1])
end
return 1
`)

/**
 * Rotates a logged-in session to a new ID in one atomic step: the old record must still exist
 * and carry the user's current revocation epoch, else nothing is created (a logout, a
 * destroyUserSession or a log-out-everywhere that ran while the request was in flight wins).
 * KEYS: old session, new session, user index, revocation epoch
 * ARGV: ttl ms, lifetime ms, old storage id, new storage id, sessions-per-user cap (0 = none),
 *       session key stem, field, value, ...
 * Returns 1 rotated, 0 revoked, -1 collision.
 */
export const rotateScript = new RedisScript(`${STAMPED_EPOCH}
local epoch = redis.call('get', KEYS[4]) or '0'
if stamped_epoch(KEYS[1]) ~= epoch then return 0 end
if redis.call('exists', KEYS[2]) == 1 then return -1 end
redis.call('del', KEYS[1])
redis.call('srem', KEYS[3], ARGV[3])
redis.call('hset', KEYS[2], '~r', epoch, unpack(ARGV, 7))
redis.call('pexpire', KEYS[2], ARGV[1])
redis.call('sadd', KEYS[3], ARGV[4])
extend(KEYS[3], ARGV[2])
enforce_cap(KEYS[3], ARGV[6], ARGV[5], ARGV[4])
if epoch ~= '0' then extend(KEYS[4], ARGV[2]) end
return 1
`)

/**
 * Applies one request's changes field by field: HSET of the fields it set, HDEL of the fields it
 * deleted, nothing else. Fields other requests changed meanwhile are untouched, which is what
 * makes overlapping requests safe. The guard keeps a destroyed, rotated or revoked session dead:
 * a slow request that loaded it before the logout cannot resurrect it. A user's record is
 * checked against the user's revocation epoch too (a record a log-out-everywhere missed, e.g.
 * one evicted from the index, is deleted here instead of written). Runs for the writes that
 * extend the expiry (the throttled touch) or delete fields; a write that only sets fields is one
 * HSET instead (RedisSessionStore#setFields), so the epoch check runs at least once per
 * `touchAfterMs` of a session's activity.
 * KEYS: session, [revocation epoch]  ARGV: ttl ms (0 = keep), number of set pairs, field, value, ..., deleted field, ...
 */
export const updateScript = new RedisScript(`${STAMPED_EPOCH}
if KEYS[2] then
  local stamped = stamped_epoch(KEYS[1])
  if not stamped then return 0 end
  if stamped ~= (redis.call('get', KEYS[2]) or '0') then
    redis.call('del', KEYS[1])
    return 0
  end
elseif redis.call('hexists', KEYS[1], '~x') == 0 then
  return 0
end
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
 * Ends one session of a user by handle, only if it is in that user's index (a user can end only
 * their own sessions). KEYS: user index, session  ARGV: storage id. Returns 1 when one ended.
 */
export const destroyOneOfUserScript = new RedisScript(`
if redis.call('sismember', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('srem', KEYS[1], ARGV[1])
return redis.call('del', KEYS[2])
`)

/**
 * "Log out everywhere" in one atomic step: bump the user's revocation epoch, then delete every
 * session in the index (but `except`, which is re-stamped with the new epoch). A rotation or a
 * write racing with it runs either wholly before (its record is in the index and deleted here)
 * or wholly after (its record's epoch is behind: refused). The session keys are built from the
 * index inside the script instead of listed by the client first, so no login between a list
 * and a delete can slip through; they share the user's hash tag, hence the script's slot.
 * KEYS: user index, revocation epoch  ARGV: session key stem, except storage id or '', lifetime ms
 */
export const destroyAllOfUserScript = new RedisScript(`${STAMPED_EPOCH}
local epoch = redis.call('incr', KEYS[2])
extend(KEYS[2], ARGV[3])
local ended = 0
for _, id in ipairs(redis.call('smembers', KEYS[1])) do
  if id ~= ARGV[2] then
    ended = ended + redis.call('del', ARGV[1] .. id)
    redis.call('srem', KEYS[1], id)
  end
end
if ARGV[2] ~= '' and redis.call('hexists', ARGV[1] .. ARGV[2], '~x') == 1 then
  redis.call('hset', ARGV[1] .. ARGV[2], '~r', epoch)
end
if redis.call('scard', KEYS[1]) == 0 then redis.call('del', KEYS[1]) end
return ended
`)
