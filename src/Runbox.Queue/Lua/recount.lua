--! args:
-- Recounts every user's running tasks from the running records behind the leases and corrects the
-- counts in K_USERS. Those counts are a cache that claim raises and leave_running lowers, always in
-- the same script as the record and its lease change, so they match while Redis keeps all its data.
-- A record lost while its task ran (partial data loss) takes its decrement with it: the count stays
-- up for good, and a user held at their limit by runs that no longer exist would never be claimed
-- from again. Each user whose count changes has their eligibility refreshed.
-- Returns how many users' counts were corrected.
local actual = {}
for _, id in ipairs(redis.call('ZRANGE', K_LEASES, 0, -1)) do
  local t = redis.call('HMGET', task_key(id), 'state', 'user')
  if t[1] == 'running' then
    actual[t[2]] = (actual[t[2]] or 0) + 1
  end
end

local stored = {}
local fields = redis.call('HGETALL', K_USERS)
for i = 1, #fields, 2 do
  local user = fields[i]:match('^run:(.*)$')
  if user then
    stored[user] = tonumber(fields[i + 1])
  end
end

local corrected = 0
local function correct(user, count)
  if count > 0 then
    redis.call('HSET', K_USERS, 'run:' .. user, count)
  else
    redis.call('HDEL', K_USERS, 'run:' .. user)
  end
  if refresh_eligible(user) then
    wake()
  end
  corrected = corrected + 1
end
for user, count in pairs(stored) do
  if count ~= (actual[user] or 0) then
    correct(user, actual[user] or 0)
  end
end
for user, count in pairs(actual) do
  if not stored[user] then
    correct(user, count)
  end
end
return corrected
