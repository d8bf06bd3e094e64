-- ARGV[6..9]: worker, max tasks, lease ms, max delayed tasks to promote first.
-- Returns a flat list of (id, user, fence, attempt, leaseUntil) per claimed task.
-- Cost is O(log n) per claimed task: users at their limit are not in `eligible`, so their waiting
-- tasks are never looked at.
local worker = ARGV[6]
local max = tonumber(ARGV[7])
local lease_ms = tonumber(ARGV[8])
promote_due(tonumber(ARGV[9]))

local out = {}
local claimed = 0
while claimed < max do
  local user = redis.call('ZRANGE', K_ELIGIBLE, 0, 0)[1]
  if not user then break end
  local rq = ready_key(user)
  local id = redis.call('ZPOPMIN', rq)[1]
  if not id then
    -- Unreachable while the eligible invariant holds; dropping the user keeps the loop finite if not.
    redis.call('ZREM', K_ELIGIBLE, user)
  else
    local running = redis.call('HINCRBY', K_URUN, user, 1)
    local head = redis.call('ZRANGE', rq, 0, 0, 'WITHSCORES')
    if head[1] and running < limit_of(user) then
      redis.call('ZADD', K_ELIGIBLE, head[2], user)
    else
      redis.call('ZREM', K_ELIGIBLE, user)
    end

    local key = task_key(id)
    local t = redis.call('HMGET', key, 'prio', 'runMs')
    redis.call('HINCRBY', K_READY_COUNT, t[1], -1)
    redis.call('ZREM', K_READY_SINCE, id)
    local fence = redis.call('HINCRBY', key, 'fence', 1)
    local attempt = redis.call('HINCRBY', key, 'attempt', 1)
    local deadline = NOW + tonumber(t[2])
    -- A lease never outlives the run deadline, so the reaper times out a hung run on schedule.
    local lease_until = math.min(NOW + lease_ms, deadline)
    redis.call('HSET', key, 'state', 'running', 'where', '', 'owner', worker, 'lease', lease_until,
      'deadline', deadline, 'startedAt', NOW)
    redis.call('ZADD', K_LEASES, lease_until, id)
    record(id, 'pending', 'running', fence, attempt, 'claimed', worker)
    out[#out + 1] = id
    out[#out + 1] = user
    out[#out + 1] = fence
    out[#out + 1] = attempt
    out[#out + 1] = lease_until
    claimed = claimed + 1
  end
end

-- One marker wakes one blocked waiter; pass the wake-up on while work is left, so waiters in
-- other processes do not sleep through it.
if claimed > 0 and redis.call('EXISTS', K_ELIGIBLE) == 1 then
  wake()
end
return out
