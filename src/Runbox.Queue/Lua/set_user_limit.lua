-- ARGV[6..7]: user, limit ('' = back to the default). Takes effect for the next claim: the user
-- joins or leaves `eligible` now (tasks already running are not stopped).
local user = ARGV[6]
if ARGV[7] == '' then
  redis.call('HDEL', K_USERS, 'limit:' .. user)
else
  redis.call('HSET', K_USERS, 'limit:' .. user, ARGV[7])
end
if refresh_eligible(user) then
  wake()
end
return 1
