--! args: id
-- Returns {state, fence, attempt, dead} or nil when the queue holds nothing for it.
local t = redis.call('HMGET', task_key(ARGV[6]), 'state', 'fence', 'attempt', 'dead')
if not t[1] then
  return nil
end
return t
