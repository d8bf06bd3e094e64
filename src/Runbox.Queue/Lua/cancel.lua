--! args: id cancel_channel
-- Returns 0 not found, 1 pending task removed (now cancelled),
-- 2 running task flagged, 3 already finished. The flag is the sure path (heartbeats and the reaper
-- read it); the PUBLISH only makes the worker react sooner.
local id = ARGV[6]
local key = task_key(id)
local t = redis.call('HMGET', key, 'state', 'user', 'prio', 'where', 'fence', 'attempt')
if not t[1] then
  return 0
end
if t[1] == 'pending' then
  unqueue_pending(id, t[2], tonumber(t[3]), t[4])
  finish_record(id, 'cancelled', 'cancelled')
  record(id, 'pending', 'cancelled', t[5], t[6], 'cancel_requested', '')
  return 1
end
if t[1] == 'running' then
  redis.call('HSET', key, 'cancel', '1')
  redis.call('PUBLISH', ARGV[7], id)
  return 2
end
return 3
