--! args: id user prio fence attempt max_attempts run_ms run_at
-- One task, as in enqueue. Requeues a dead-lettered task with the budget the caller passes; a task
-- the dead-letter trim already dropped is requeued too (the store still lists it). Returns 1 when
-- queued, 0 when the queue holds the task and it is not dead-lettered.
local a = fresh_args(6)
a.reason = 'dead_letter_requeued'
local old = redis.call('HMGET', task_key(a.id), 'state', 'fence', 'dead')
if old[1] and old[3] ~= '1' then
  return 0
end
queue_fresh(a, old)
return 1
