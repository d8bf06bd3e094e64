-- Returns {ready count per priority (flat pairs), delayed, running, dead, dead trimmed,
-- ready-since of the oldest ready task ('' when none)}.
local oldest = redis.call('ZRANGE', K_READY_SINCE, 0, 0, 'WITHSCORES')
return {
  redis.call('HGETALL', K_READY_COUNT),
  redis.call('ZCARD', K_DELAYED),
  redis.call('ZCARD', K_LEASES),
  redis.call('ZCARD', K_DEAD),
  tonumber(redis.call('HGET', K_COUNTERS, 'deadTrimmed') or '0'),
  oldest[2] or '',
}
