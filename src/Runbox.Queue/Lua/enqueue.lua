-- ARGV[6..15]: id, user, prio, fence, attempt, maxAttempts, retryOnInfrastructure, retryOnTimeout,
-- runMs, runAt ('' = now). Returns 1 when queued, 0 when the task was already pending or running
-- (a repeated enqueue, e.g. by the reconciler, leaves it as it is).
local a = fresh_args(6)
a.reason = 'enqueued'
local state = redis.call('HGET', task_key(a.id), 'state')
if state == 'pending' or state == 'running' then
  return 0
end
queue_fresh(a)
return 1
