--! args: grace_ms max lease_ms
-- lease_ms: the lease of the hand-over. Takes up to `max` leases expired for longer than the grace
-- and hands each attempt over to the reaper: bumps the fence first (the frozen holder's later
-- writes are stale from here on), counts the stall, and leases the task to the reaper under the new
-- fence. What follows (retry, time out, dead-letter, cancel) is decided by the caller with the
-- task's own retry policy (Runbox.Lifecycle), and applied with finish.lua under that fence; a
-- reaper that dies first lets its lease expire, and the next reap takes the task again without
-- counting another stall. Returns (id, user, fence, attempt, stalls, cancelled, pastDeadline) per
-- task. Idempotent: a second run finds the lease held again or gone.
local grace = tonumber(ARGV[6])
local max = tonumber(ARGV[7])
local lease_ms = tonumber(ARGV[8])

local expired = redis.call('ZRANGE', K_LEASES, '-inf', NOW - grace, 'BYSCORE', 'LIMIT', 0, max)
local out = {}
for _, id in ipairs(expired) do
  local key = task_key(id)
  local t = redis.call('HMGET', key, 'state', 'user', 'attempt', 'cancel', 'deadline', 'owner', 'stalls')
  if t[1] ~= 'running' then
    redis.call('ZREM', K_LEASES, id)
  else
    local fence = redis.call('HINCRBY', key, 'fence', 1)
    local stalls = tonumber(t[7] or '0')
    if t[6] ~= REAPER then
      stalls = redis.call('HINCRBY', key, 'stalls', 1)
    end
    local lease_until = NOW + lease_ms
    redis.call('HSET', key, 'owner', REAPER, 'lease', lease_until)
    redis.call('ZADD', K_LEASES, lease_until, id)
    record(id, 'running', 'running', fence, t[3], 'lease_expired', REAPER)
    out[#out + 1] = id
    out[#out + 1] = t[2]
    out[#out + 1] = fence
    out[#out + 1] = tonumber(t[3])
    out[#out + 1] = stalls
    out[#out + 1] = t[4] == '1' and 1 or 0
    out[#out + 1] = NOW >= tonumber(t[5]) and 1 or 0
  end
end
return out
