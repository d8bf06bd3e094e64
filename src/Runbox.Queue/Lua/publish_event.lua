--! args: max_length ttl_ms channel id kind data stream attempt [fence]
-- Standalone (no prelude). KEYS[1]: the task's event stream; KEYS[2] (output only): the task's
-- hash. The fence comes with KEYS[2]: the publisher's. Appends one event, keeps the stream capped
-- and expiring (a finished task's stream vanishes ttl after its last event) and nudges readers.
-- With a fence, appends nothing and returns false unless the task is running under that fence: a
-- lost lease's late output is refused.
if KEYS[2] then
  local t = redis.call('HMGET', KEYS[2], 'state', 'fence')
  if t[1] ~= 'running' or t[2] ~= ARGV[9] then
    return false
  end
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
  'kind', ARGV[5], 'data', ARGV[6], 'stream', ARGV[7], 'attempt', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return id
