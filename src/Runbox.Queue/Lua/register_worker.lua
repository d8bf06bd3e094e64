--! args: id ttl_ms host slots busy version languages
-- languages: JSON. A worker that stops registering drops out of the list after the ttl, and so do
-- the languages it offered.
local id = ARGV[6]
local ttl = tonumber(ARGV[7])
local key = P .. 'w:' .. id
redis.call('ZADD', K_WORKERS, NOW + ttl, id)
redis.call('HSET', key, 'host', ARGV[8], 'slots', ARGV[9], 'busy', ARGV[10], 'version', ARGV[11],
  'seen', NOW, 'languages', ARGV[12])
redis.call('PEXPIRE', key, ttl)
return 1
