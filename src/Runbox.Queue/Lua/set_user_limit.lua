--! args: user limit
-- limit: '' = back to the default. Takes effect for the next claim: the user joins or leaves
-- `eligible` now (tasks already running are not stopped). Writes only a change and returns 1 for
-- one, 0 when the limit was already so: the API re-asserts every limit it knows on a timer, and a
-- change there means Redis lost what it was told.
local user = ARGV[6]
local field = 'limit:' .. user
local current = redis.call('HGET', K_USERS, field)
if ARGV[7] == '' then
  if not current then return 0 end
  redis.call('HDEL', K_USERS, field)
else
  if current == ARGV[7] then return 0 end
  redis.call('HSET', K_USERS, field, ARGV[7])
end
if refresh_eligible(user) then
  wake()
end
return 1
