--! args: lease_ms (id fence)...
-- Returns one code per (id, fence) pair:
-- 0 ok, 1 lost (not running or fence moved on: write nothing), 2 cancel requested, 3 past deadline.
-- Extends only leases whose fence matches, and never past the run deadline.
local lease_ms = tonumber(ARGV[6])
local out = {}
for i = 7, #ARGV, 2 do
  local id = ARGV[i]
  local key = task_key(id)
  local t = redis.call('HMGET', key, 'state', 'fence', 'cancel', 'deadline', 'lease')
  local code
  if t[1] ~= 'running' or t[2] ~= ARGV[i + 1] then
    code = 1
  else
    local deadline = tonumber(t[4])
    local lease_until = math.min(NOW + lease_ms, deadline)
    if lease_until > tonumber(t[5]) then
      redis.call('HSET', key, 'lease', lease_until)
      redis.call('ZADD', K_LEASES, 'XX', lease_until, id)
    end
    if t[3] == '1' then
      code = 2
    elseif NOW >= deadline then
      code = 3
    else
      code = 0
    end
  end
  out[#out + 1] = code
end
return out
