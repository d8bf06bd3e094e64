--! args: prefix now default_limit transitions_cap retention_ms
-- Shared prelude, prepended to every queue script when it is loaded (see RedisScripts). Its
-- arguments come first in every call; each script's own first line declares the ones after them.
-- KEYS are the static keys of one queue, all under one hash tag; per-task and per-user keys are
-- derived from the prefix in ARGV[1], which carries the same hash tag (Redis Cluster routes them
-- to the same slot). Time is ARGV[2], from the caller's TimeProvider: scripts never read TIME,
-- so tests can drive the clock and every script stays deterministic.
local P = ARGV[1]
local NOW = tonumber(ARGV[2])
local DEFAULT_LIMIT = tonumber(ARGV[3])
local TRANSITIONS_CAP = ARGV[4]
local RETENTION_MS = ARGV[5]

local K_ELIGIBLE = KEYS[1]     -- ZSET user -> score of the user's head task; only users under their limit
local K_USERS = KEYS[2]        -- HASH run:<user> -> running count (changed only where a task enters or
                               -- leaves running), limit:<user> -> limit override; one HMGET reads both
local K_LEASES = KEYS[3]       -- ZSET task -> lease deadline (ms)
local K_DELAYED = KEYS[4]      -- ZSET task -> run-at (ms)
local K_DEAD = KEYS[5]         -- ZSET task -> dead-lettered at (ms)
local K_SEQ = KEYS[6]          -- STRING FIFO sequence
local K_MARKER = KEYS[7]       -- ZSET wake-up marker for BZPOPMIN
local K_TRANSITIONS = KEYS[8]  -- STREAM of every transition, capped
local K_COUNTERS = KEYS[9]     -- HASH of monotonic counters (deadTrimmed)
local K_WORKERS = KEYS[10]     -- ZSET worker -> registration expiry (ms)
local K_MAINTAINER = KEYS[11]  -- HASH holder, until: the process that runs the maintenance (lead.lua)

local PRIORITY_SPAN = 4294967296

-- The owner of an attempt the reaper took over (reap.lua); no worker id starts with '~'.
local REAPER = '~reaper'

local function task_key(id) return P .. 't:' .. id end
local function ready_key(user) return P .. 'rq:' .. user end

local function limit_of(user)
  return tonumber(redis.call('HGET', K_USERS, 'limit:' .. user) or DEFAULT_LIMIT)
end

-- Running count and limit of a user in one call.
local function room_of(user)
  local u = redis.call('HMGET', K_USERS, 'run:' .. user, 'limit:' .. user)
  return tonumber(u[1] or '0'), tonumber(u[2] or DEFAULT_LIMIT)
end

local function wake()
  redis.call('ZADD', K_MARKER, 0, '0')
end

-- Puts the user in `eligible` (scored by their head task) iff they have ready work and room.
-- Returns true when the user newly became eligible: only then is a wake-up due (while anyone is
-- eligible, each claim passes the wake-up on, see claim.lua).
local function refresh_eligible(user)
  local head = redis.call('ZRANGE', ready_key(user), 0, 0, 'WITHSCORES')
  if head[1] then
    local running, limit = room_of(user)
    if running < limit then
      return redis.call('ZADD', K_ELIGIBLE, head[2], user) == 1
    end
  end
  redis.call('ZREM', K_ELIGIBLE, user)
  return false
end

local function record(id, from, to, fence, attempt, reason, worker)
  redis.call('XADD', K_TRANSITIONS, 'MAXLEN', '~', TRANSITIONS_CAP, '*',
    'task', id, 'from', from, 'to', to, 'fence', fence, 'attempt', attempt,
    'reason', reason, 'worker', worker or '', 'at', NOW)
end

-- A pending task becomes claimable: it joins its user's ready queue behind every task of the same
-- priority (a fresh sequence number), and the user's eligible score drops to it when it is the
-- new best head (ZADD LT also adds a missing user). The caller sets state=pending, where=ready and
-- readyAt=NOW. No counters are kept for the stats: the hot path stays lean and stats.lua counts.
local function make_ready(id, user, prio)
  local seq = redis.call('INCR', K_SEQ)
  local score = (9 - prio) * PRIORITY_SPAN + seq
  redis.call('ZADD', ready_key(user), score, id)
  local running, limit = room_of(user)
  if running < limit and redis.call('ZADD', K_ELIGIBLE, 'LT', score, user) == 1 then
    wake()
  end
end

-- The caller sets state=pending, where=delayed.
local function make_delayed(id, run_at)
  redis.call('ZADD', K_DELAYED, run_at, id)
end

-- Takes a pending task out of whichever pending structure holds it.
local function unqueue_pending(id, user, prio, where)
  if where == 'ready' then
    redis.call('ZREM', ready_key(user), id)
    refresh_eligible(user)
  else
    redis.call('ZREM', K_DELAYED, id)
  end
end

-- Moves up to `max` due delayed tasks to their ready queues.
local function promote_due(max)
  local due = redis.call('ZRANGE', K_DELAYED, '-inf', NOW, 'BYSCORE', 'LIMIT', 0, max)
  for _, id in ipairs(due) do
    redis.call('ZREM', K_DELAYED, id)
    local t = redis.call('HMGET', task_key(id), 'user', 'prio', 'state')
    if t[3] == 'pending' then
      redis.call('HSET', task_key(id), 'where', 'ready', 'readyAt', NOW)
      make_ready(id, t[1], tonumber(t[2]))
    end
  end
end

-- The only place a running task stops counting against its user: callers have just checked
-- state == running under the fence, so this runs exactly once per attempt. A user with no ready
-- task cannot be in `eligible` (claim drops them when their queue empties), so only a user with a
-- head task needs a look.
local function leave_running(id, user)
  redis.call('ZREM', K_LEASES, id)
  local running = redis.call('HINCRBY', K_USERS, 'run:' .. user, -1)
  if running <= 0 then
    redis.call('HDEL', K_USERS, 'run:' .. user)
  end
  local head = redis.call('ZRANGE', ready_key(user), 0, 0, 'WITHSCORES')
  if head[1] and running < limit_of(user) and redis.call('ZADD', K_ELIGIBLE, head[2], user) == 1 then
    wake()
  end
end

-- A finished task's record lingers for a while (late writers get a clean "stale" answer and
-- GetState still answers), then expires so memory stays bounded.
local function finish_record(id, state, outcome)
  redis.call('HSET', task_key(id), 'state', state, 'where', '', 'outcome', outcome, 'finishedAt', NOW)
  redis.call('PEXPIRE', task_key(id), RETENTION_MS)
end

-- Dead-letters a task and trims the set to `cap`, oldest first. Returns how many were trimmed; the
-- count is also kept in a counter and the transitions stream, so trimming is never silent.
local function dead_letter(id, state, cap)
  redis.call('HSET', task_key(id), 'state', state, 'where', '', 'outcome', 'dead', 'finishedAt', NOW, 'dead', '1')
  redis.call('ZADD', K_DEAD, NOW, id)
  local over = redis.call('ZCARD', K_DEAD) - cap
  if over <= 0 then return 0 end
  local trimmed = redis.call('ZPOPMIN', K_DEAD, over)
  for i = 1, #trimmed, 2 do
    redis.call('DEL', task_key(trimmed[i]))
    record(trimmed[i], state, state, '', '', 'dead_letter_trimmed', '')
  end
  redis.call('HINCRBY', K_COUNTERS, 'deadTrimmed', over)
  return over
end

-- Writes a fresh pending task over whatever record `old` ({state, fence, dead}) describes. The
-- fence never goes down: a queue rebuilt from the store keeps the highest fence either side has
-- seen, so no old fence is ever handed out again.
local function queue_fresh(a, old)
  local key = task_key(a.id)
  local fence = math.max(tonumber(old[2] or '0'), a.fence)
  if old[1] then
    redis.call('DEL', key)
    if old[3] == '1' then
      redis.call('ZREM', K_DEAD, a.id)
    end
  end
  local delayed = a.run_at > NOW
  redis.call('HSET', key, 'user', a.user, 'prio', a.prio, 'fence', fence, 'attempt', a.attempt,
    'max', a.max, 'runMs', a.run_ms, 'stalls', 0, 'enqueuedAt', NOW,
    'state', 'pending', 'where', delayed and 'delayed' or 'ready', 'readyAt', NOW)
  if delayed then
    make_delayed(a.id, a.run_at)
  else
    make_ready(a.id, a.user, a.prio)
  end
  record(a.id, old[1] or '', 'pending', fence, a.attempt, a.reason, '')
end

local function fresh_args(first)
  return {
    id = ARGV[first], user = ARGV[first + 1], prio = tonumber(ARGV[first + 2]),
    fence = tonumber(ARGV[first + 3]), attempt = tonumber(ARGV[first + 4]),
    max = tonumber(ARGV[first + 5]), run_ms = tonumber(ARGV[first + 6]), run_at = tonumber(ARGV[first + 7]),
  }
end

-- Ends a running attempt (the caller checked state and fence) with an outcome:
-- completed | cancelled | failed (finished, kept a while) | dead (dead-lettered) |
-- retry (back to pending: delayed until run_at, or ready at once). Returns how many dead
-- letters were trimmed.
local function apply_outcome(id, user, prio, fence, attempt, kind, status, run_at, dead_cap, reason, worker)
  local key = task_key(id)
  leave_running(id, user)
  record(id, 'running', status, fence, attempt, reason, worker)
  if kind == 'retry' then
    redis.call('HDEL', key, 'cancel')
    local delayed = run_at > NOW
    redis.call('HSET', key, 'state', 'pending', 'where', delayed and 'delayed' or 'ready', 'outcome', kind,
      'readyAt', NOW)
    if delayed then
      make_delayed(id, run_at)
    else
      make_ready(id, user, prio)
    end
    record(id, status, 'pending', fence, attempt, 'retry', worker)
    return 0
  end
  if kind == 'dead' then
    return dead_letter(id, status, dead_cap)
  end
  finish_record(id, status, kind)
  return 0
end
