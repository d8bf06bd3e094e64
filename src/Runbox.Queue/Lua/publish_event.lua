-- Standalone (no prelude). KEYS[1]: the task's event stream. ARGV: max length, ttl ms, channel,
-- task id, kind, data, output stream, attempt. Appends one event, keeps the stream capped and
-- expiring (a finished task's stream vanishes ttl after its last event) and nudges readers.
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
  'kind', ARGV[5], 'data', ARGV[6], 'stream', ARGV[7], 'attempt', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return id
