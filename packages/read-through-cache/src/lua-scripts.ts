import type { BatchableScript } from './script-batch.js'

/**
 * The lease protocol of "Scaling Memcache at Facebook" (NSDI 2013, section 3.2.1) on Redis.
 *
 * A reader that misses gets a lease (a random token with an expiry) and is the only one that may
 * fill the key. An invalidation deletes the value AND the lease. The fill is a compare-and-set on
 * the token, so a loader that read the database before the invalidation finds its token gone and
 * cannot write the value that is now stale. All scripts touch only keys of one hash tag.
 */

/**
 * The calls of one script made in the same turn go to Redis as one call of its batch form (see
 * script-batch.ts): `one` is the body for one call, a Lua function of that call's keys and args;
 * the batch form runs it for each call in turn (KEYS and ARGV hold `keys` and `args` values per
 * call, back to back) under `pcall`, so a call that fails (a foreign key of the wrong type) fails
 * alone: the first of its values in the flat reply is an error reply, the others run as usual.
 * Each call returns `width` values; '' stands for "none", because a nil inside a Lua table would
 * truncate the reply.
 */
function batchScript(
  one: string,
  { keys, args, width }: { keys: number; args: number; width: number },
): BatchableScript {
  const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`)
  const params = [...names('k', keys), ...names('a', args)].join(', ')
  const values = [
    ...Array.from({ length: keys }, (_, i) => `KEYS[k + ${i}]`),
    ...Array.from({ length: args }, (_, i) => `ARGV[a + ${i}]`),
  ].join(', ')
  const results = names('r', width)
  const source = `local function one(${params})
${one}
end
local out = {}
local n = 0
local a = 1
for k = 1, #KEYS, ${keys} do
  local ok, ${results.join(', ')} = pcall(one, ${values})
  if ok then
${results.map((r, i) => `    out[n + ${i + 1}] = ${r}`).join('\n')}
  else
    if type(r1) == 'table' then r1 = r1.err end
${[`    out[n + 1] = redis.error_reply(tostring(r1))`, ...results.slice(1).map((_, i) => `    out[n + ${i + 2}] = ''`)].join('\n')}
  end
  n = n + ${width}
  a = a + ${args}
end
return out
`
  return { source, width }
}

/**
 * Per call: keys value, lease, outcome; args now (ms), token, lease ttl (ms), awaited holder ('' if
 * none), force ('1': take the lease even over a fresh value, for `forceFresh`).
 * Returns value or '', status, holder, outcome: 0 = fresh value, no lease taken; 1 = lease
 * acquired by this caller (value, if any, is stale); 2 = another caller holds the lease, whose
 * token is `holder`; 3 = the awaited holder finished without storing a value and left `outcome`
 * for its waiters (so they do not take the lease in turn and load the same nothing again).
 */
export const GET_OR_LEASE = batchScript(
  `local v = redis.call('GET', k1)
if v and a5 ~= '1' then
  local fresh = tonumber(string.match(v, '^(%d+)|'))
  if fresh and fresh > tonumber(a1) then return v, 0, '', '' end
end
if a4 ~= '' then
  local o = redis.call('GET', k3)
  if o and string.sub(o, 1, #a4 + 1) == a4 .. '|' then
    return v or '', 3, a4, string.sub(o, #a4 + 2)
  end
end
if redis.call('SET', k2, a2, 'NX', 'PX', a3) then return v or '', 1, '', '' end
return v or '', 2, redis.call('GET', k2) or '', ''`,
  { keys: 3, args: 5, width: 4 },
)

/** Per call: keys value, lease; args token, envelope, px. Writes only while the caller still holds the lease (1, else 0). */
export const SET_IF_LEASE = batchScript(
  `if redis.call('GET', k2) == a1 then
  redis.call('SET', k1, a2, 'PX', a3)
  redis.call('DEL', k2)
  return 1
end
return 0`,
  { keys: 2, args: 3, width: 1 },
)

/** KEYS: lease. ARGV: token. Only the owner may release: a lease that expired and was re-acquired belongs to someone else. */
export const RELEASE_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

/**
 * KEYS: lease, outcome. ARGV: token, outcome, px. Releases the caller's lease and leaves its
 * outcome for the callers that waited on that token. Nothing if the lease is no longer the
 * caller's (an invalidation voided it: the waiters must then load afresh).
 */
export const RELEASE_WITH_OUTCOME = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`

/** KEYS: value, lease. ARGV: envelope, px. An explicit set wins over any load in flight, so it voids the lease. */
export const SET_AND_VOID_LEASE = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
`

/**
 * KEYS: members, epoch, bumped-at. ARGV: member, px. Adds a member; the set lives at least as long
 * as its longest-lived member. Returns {epoch, bumped-at} as read atomically with the add ('' for none).
 */
export const ADD_TAG_MEMBER = `
redis.call('SADD', KEYS[1], ARGV[1])
local px = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < px then redis.call('PEXPIRE', KEYS[1], px) end
return {redis.call('GET', KEYS[2]) or '', redis.call('GET', KEYS[3]) or ''}
`

/**
 * KEYS: members, epoch, bumped-at, taken (this call's own set: `<taken prefix><takeId>`). Bumps the
 * epoch first (and records when, in the server's ms, for tags a loader declares after loading:
 * `ctx.setTags`), then moves the members into `taken` and returns them: see the ordering argument
 * in tag-bookkeeping.ts. Run again with the same `taken` (a replay after its reply was lost, or
 * after the keys' deletion failed), it returns what the first run took, without bumping again: the
 * members leave Redis only once the caller has deleted their keys and then `taken`. A replay leaves
 * `taken` as the string 'done' instead (see `finishTake`), so a late first run, still queued in a
 * client while the replay went through, takes nothing.
 */
export const TAKE_TAG_MEMBERS = `
local kind = redis.call('TYPE', KEYS[4]).ok
if kind == 'set' then return redis.call('SMEMBERS', KEYS[4]) end
if kind ~= 'none' then return {} end
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], 86400000)
local t = redis.call('TIME')
redis.call('SET', KEYS[3], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), 'PX', 86400000)
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
redis.call('RENAME', KEYS[1], KEYS[4])
redis.call('PEXPIRE', KEYS[4], 86400000)
return redis.call('SMEMBERS', KEYS[4])
`

/**
 * KEYS: value, lease. ARGV: now (ms). Marks the value stale now (its fresh-until becomes `now`,
 * its stale-until and TTL stay, so SWR and grace can still serve it) and voids the lease, so a load
 * in flight, which may have read before the change, cannot write.
 */
export const EXPIRE_ENTRY = `
redis.call('DEL', KEYS[2])
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local fresh, rest = string.match(v, '^(%d+)|(.*)$')
if fresh and tonumber(fresh) > tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. rest, 'KEEPTTL')
end
return 1
`
