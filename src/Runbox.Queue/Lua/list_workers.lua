--! args:
-- Drops workers whose registration expired, then returns (id, host, slots, busy, seen, version,
-- languages) for each live one.
local stale = redis.call('ZRANGE', K_WORKERS, '-inf', NOW, 'BYSCORE')
for _, id in ipairs(stale) do
  redis.call('ZREM', K_WORKERS, id)
  redis.call('DEL', P .. 'w:' .. id)
end
local out = {}
for _, id in ipairs(redis.call('ZRANGE', K_WORKERS, 0, -1)) do
  local w = redis.call('HMGET', P .. 'w:' .. id, 'host', 'slots', 'busy', 'seen', 'version', 'languages')
  if w[1] then
    out[#out + 1] = id
    for _, v in ipairs(w) do out[#out + 1] = v end
  end
end
return out
