--! args: id
-- Forgets the task wherever it is; a running one stops counting against its user.
-- Returns 1 when the queue held the task, 0 when it did not (a repeat).
local id = ARGV[6]
local key = task_key(id)
local t = redis.call('HMGET', key, 'state', 'user', 'prio', 'where')
if not t[1] then
  return 0
end
if t[1] == 'pending' then
  unqueue_pending(id, t[2], tonumber(t[3]), t[4])
elseif t[1] == 'running' then
  leave_running(id, t[2])
end
redis.call('ZREM', K_DEAD, id)
redis.call('DEL', key)
record(id, t[1], '', '', '', 'removed', '')
return 1
