--! args: store_state id user prio fence attempt max_attempts run_ms run_at
-- The reconciler's repair of one task after Redis lost some of its data (a crash between AOF syncs, a
-- flush, keys deleted one by one while the service ran): a record may survive without its place in a
-- ready queue, the delayed set, `eligible` or the leases, and nothing would ever claim or reap it.
-- store_state: what the store has, 'pending' or 'running'; then the task as enqueue.lua takes it.
-- Returns 0 when the queue held the task as it should, 1 when it was restored, 2 when the store has
-- it running and the queue has no record of it (the caller ends that attempt in the store).
local a = fresh_args(7)
local key = task_key(a.id)
local t = redis.call('HMGET', key, 'state', 'fence', 'dead', 'user', 'prio', 'where', 'lease')
local state = t[1]

if state == 'running' then
  -- Whether the store has caught up with the claim or not, a running record needs its lease entry.
  if redis.call('ZSCORE', K_LEASES, a.id) then
    return 0
  end
  redis.call('ZADD', K_LEASES, t[7], a.id)
  return 1
end
if ARGV[6] == 'running' then
  -- Pending or finished here: the queue is ahead of the store, whose write follows.
  return state and 0 or 2
end

if state ~= 'pending' then
  a.reason = 'restored'
  queue_fresh(a, {t[1], t[2], t[3]})
  return 1
end
local user, prio = t[4], tonumber(t[5])
if t[6] == 'delayed' then
  if redis.call('ZSCORE', K_DELAYED, a.id) then
    return 0
  end
  -- Its run-at went with the set: the store's stands, or it is due now.
  if a.run_at > NOW then
    make_delayed(a.id, a.run_at)
  else
    redis.call('HSET', key, 'where', 'ready', 'readyAt', NOW)
    make_ready(a.id, user, prio)
  end
  return 1
end
if not redis.call('ZSCORE', ready_key(user), a.id) then
  make_ready(a.id, user, prio)
  return 1
end
-- In its ready queue, but its user may have lost their place among the eligible.
if refresh_eligible(user) then
  wake()
  return 1
end
return 0
