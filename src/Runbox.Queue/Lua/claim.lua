--! args: worker max lease_ms promote
-- Claims up to `max` tasks for `worker`, after promoting up to `promote` delayed tasks that are due.
-- Returns a flat list of (id, user, fence, attempt, leaseUntil) per claimed task.
-- Cost is O(log n) per claimed task: users at their limit are not in `eligible`, so their waiting
-- tasks are never looked at.
local worker = ARGV[6]
local max = tonumber(ARGV[7])
local lease_ms = tonumber(ARGV[8])
promote_due(tonumber(ARGV[9]))

local out = {}
local claimed = 0
local limits = {}
while claimed < max do
  local user = redis.call('ZRANGE', K_ELIGIBLE, 0, 0)[1]
  if not user then break end
  local rq = ready_key(user)
  local id = redis.call('ZPOPMIN', rq)[1]
  if not id then
    -- Unreachable while the eligible invariant holds; dropping the user keeps the loop finite if not.
    redis.call('ZREM', K_ELIGIBLE, user)
  else
    local running = redis.call('HINCRBY', K_USERS, 'run:' .. user, 1)
    limits[user] = limits[user] or limit_of(user)
    local head = redis.call('ZRANGE', rq, 0, 0, 'WITHSCORES')
    if head[1] and running < limits[user] then
      redis.call('ZADD', K_ELIGIBLE, head[2], user)
    else
      redis.call('ZREM', K_ELIGIBLE, user)
    end

    local key = task_key(id)
    local t = redis.call('HMGET', key, 'runMs', 'fence', 'attempt')
    -- A new fence per attempt: writes of any earlier holder of this task are stale from here on.
    local fence = tonumber(t[2]) + 1
    local attempt = tonumber(t[3]) + 1
    local deadline = NOW + tonumber(t[1])
    -- A lease never outlives the run deadline, so the reaper times out a hung run on schedule.
    local lease_until = math.min(NOW + lease_ms, deadline)
    redis.call('HSET', key, 'state', 'running', 'where', '', 'owner', worker, 'lease', lease_until,
      'deadline', deadline, 'startedAt', NOW, 'fence', fence, 'attempt', attempt)
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
