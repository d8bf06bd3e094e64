--! args:
-- Returns {ready count per priority (flat pairs), delayed, running, dead, dead trimmed,
-- readyAt of the oldest ready task ('' when none)}.
-- Nothing on the hot path keeps counts for this: it counts. Every user with ready tasks is in
-- `eligible` or at their limit, so has a running count or a limit override in K_USERS (the
-- default limit is at least 1). Cost: 20 O(log n) calls per such user.
local users = {}
for _, user in ipairs(redis.call('ZRANGE', K_ELIGIBLE, 0, -1)) do
  users[user] = true
end
for _, field in ipairs(redis.call('HKEYS', K_USERS)) do
  users[field:match('^%a+:(.*)$')] = true
end

local counts = {}
local oldest_seq, oldest_id
for user in pairs(users) do
  local rq = ready_key(user)
  for prio = 0, 9 do
    local low = (9 - prio) * PRIORITY_SPAN
    local high = '(' .. string.format('%d', low + PRIORITY_SPAN)
    local n = redis.call('ZCOUNT', rq, low, high)
    if n > 0 then
      counts[#counts + 1] = prio
      counts[#counts + 1] = n
      -- Within a priority the first task has the lowest sequence, i.e. became ready first.
      local first = redis.call('ZRANGE', rq, low, high, 'BYSCORE', 'LIMIT', 0, 1, 'WITHSCORES')
      local seq = tonumber(first[2]) - low
      if not oldest_seq or seq < oldest_seq then
        oldest_seq, oldest_id = seq, first[1]
      end
    end
  end
end

return {
  counts,
  redis.call('ZCARD', K_DELAYED),
  redis.call('ZCARD', K_LEASES),
  redis.call('ZCARD', K_DEAD),
  tonumber(redis.call('HGET', K_COUNTERS, 'deadTrimmed') or '0'),
  oldest_id and redis.call('HGET', task_key(oldest_id), 'readyAt') or '',
}
