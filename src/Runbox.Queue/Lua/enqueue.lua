--! args: (id user prio fence attempt max_attempts run_ms run_at)...
-- One group of arguments per task (run_at 0 = now). Returns how many were queued; a task already
-- pending or running is left as it is (a repeated enqueue, e.g. by the reconciler).
local queued = 0
for first = 6, #ARGV, 8 do
  local a = fresh_args(first)
  a.reason = 'enqueued'
  local old = redis.call('HMGET', task_key(a.id), 'state', 'fence', 'dead')
  if old[1] ~= 'pending' and old[1] ~= 'running' then
    queue_fresh(a, old)
    queued = queued + 1
  end
end
return queued
