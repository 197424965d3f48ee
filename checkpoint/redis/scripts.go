package redis

import goredis "github.com/redis/go-redis/v9"

// Every conditional write is one Lua script, so the condition and the write are atomic on the
// server. Scripts touch only the keys passed in KEYS (all under one hash tag), which keeps them
// valid on Redis Cluster. go-redis runs them with EVALSHA and falls back to EVAL when the
// server's script cache lacks them.
//
// Status codes a script returns as the first element of its reply.
const (
	codeOK       = 0
	codeLost     = 1 // owner or token differ: checkpoint.ErrLeaseLost
	codeConflict = 2 // owner or counter differ: checkpoint.ErrConflict
	codeBehind   = 3 // position behind the stored one: checkpoint.ErrPositionBehind
)

// Replays. go-redis sends a command again when the connection broke or timed out after the
// command was written (MaxRetries), so a script may run twice for one call. Renewals and
// heartbeats are harmless twice (the counter moves by two) and checkpoints are idempotent;
// takes, releases and handoff requests would report a failure for a write that succeeded.
// Those calls therefore carry a nonce, fresh per Go call and identical across go-redis's
// resends, stored in the "op" field; a script whose condition fails but finds its own nonce
// knows its earlier run applied and reports success.

// prelude holds the helpers every lease script shares.
const prelude = `
-- before reports whether a sorts before b byte by byte. Lua's '<' on strings uses strcoll,
-- which depends on the server's locale (Redis sets LC_COLLATE from the environment), so
-- order keys are compared here explicitly.
local function before(a, b)
  if a == b then return false end
  local n = #a
  if #b < n then n = #b end
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- holds reports whether the row is owned by owner with token (both non-empty, checked in Go).
local function holds(key, owner, token)
  local v = redis.call('HMGET', key, 'owner', 'token')
  return v[1] == owner and v[2] == token
end
`

// takeScript: KEYS = lease row, lease index; ARGV = shard, worker, counter, token.
// The token doubles as the nonce.
var takeScript = goredis.NewScript(prelude + `
local v = redis.call('HMGET', KEYS[1], 'counter', 'op')
local ok = v[1] == ARGV[3] or (v[1] == false and ARGV[3] == '0')
if not ok then
  if v[2] == ARGV[4] then return {0, redis.call('HGETALL', KEYS[1])} end
  return {2}
end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'token', ARGV[4], 'op', ARGV[4])
redis.call('HDEL', KEYS[1], 'pending')
redis.call('HINCRBY', KEYS[1], 'counter', 1)
redis.call('SADD', KEYS[2], ARGV[1])
return {0, redis.call('HGETALL', KEYS[1])}
`)

// renewScript: KEYS = lease row; ARGV = owner, token.
var renewScript = goredis.NewScript(prelude + `
if not holds(KEYS[1], ARGV[1], ARGV[2]) then return {1} end
redis.call('HINCRBY', KEYS[1], 'counter', 1)
return {0, redis.call('HGETALL', KEYS[1])}
`)

// checkpointScript: KEYS = lease row; ARGV = owner, token, seq, subseq, end, order.
var checkpointScript = goredis.NewScript(prelude + `
if not holds(KEYS[1], ARGV[1], ARGV[2]) then return {1} end
if before(ARGV[6], redis.call('HGET', KEYS[1], 'order') or '') then return {3} end
redis.call('HSET', KEYS[1], 'seq', ARGV[3], 'subseq', ARGV[4], 'end', ARGV[5], 'order', ARGV[6])
return {0}
`)

// releaseScript: KEYS = lease row; ARGV = owner, token, seq, subseq, end, order, nonce.
// An empty order means no final position.
var releaseScript = goredis.NewScript(prelude + `
if not holds(KEYS[1], ARGV[1], ARGV[2]) then
  if redis.call('HGET', KEYS[1], 'op') == ARGV[7] then return {0} end
  return {1}
end
if ARGV[6] ~= '' then
  if before(ARGV[6], redis.call('HGET', KEYS[1], 'order') or '') then return {3} end
  redis.call('HSET', KEYS[1], 'seq', ARGV[3], 'subseq', ARGV[4], 'end', ARGV[5], 'order', ARGV[6])
end
redis.call('HDEL', KEYS[1], 'owner', 'token', 'pending')
redis.call('HSET', KEYS[1], 'op', ARGV[7])
redis.call('HINCRBY', KEYS[1], 'counter', 1)
return {0}
`)

// handoffScript: KEYS = lease row; ARGV = owner, claimant, counter, nonce.
var handoffScript = goredis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'owner', 'counter', 'op')
if v[1] ~= ARGV[1] or v[2] ~= ARGV[3] then
  if v[3] == ARGV[4] then return {0} end
  return {2}
end
redis.call('HSET', KEYS[1], 'pending', ARGV[2], 'op', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'counter', 1)
return {0}
`)

// deleteScript: KEYS = row, index; ARGV = member (shard or worker ID), counter. It serves
// DeleteLease and RemoveWorker, whose rows both keep their counter in the "counter" field.
var deleteScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'counter') ~= ARGV[2] then return {2} end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return {0}
`)

// heartbeatScript: KEYS = worker row, worker index; ARGV = worker ID, instance. Returns
// {0, previous counter, previous instance}: 0 and "" for a new row, and "" for a row written
// before rows had an instance. The counter comes back as the string HGET reads, so Lua's
// doubles never round it.
var heartbeatScript = goredis.NewScript(`
local prev = redis.call('HMGET', KEYS[1], 'counter', 'instance')
redis.call('HINCRBY', KEYS[1], 'counter', 1)
redis.call('HSET', KEYS[1], 'instance', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return {0, prev[1] or '0', prev[2] or ''}
`)
