--! args: candidate term_ms release
-- release: 1 = give the lead up if held. One process at a time runs the cluster's maintenance (the
-- reaper, the reconciler, retention): the one the maintainer hash names, until its term runs out
-- unless it renews it. Time is NOW, like everywhere in the queue, so a lead lapses on the callers'
-- clock. Returns 1 when the candidate leads (renewed or newly), else 0.
local candidate = ARGV[6]
local term = tonumber(ARGV[7])
local m = redis.call('HMGET', K_MAINTAINER, 'holder', 'until')
local held = m[1] and tonumber(m[2]) > NOW
if ARGV[8] == '1' then
  if m[1] == candidate then
    redis.call('DEL', K_MAINTAINER)
  end
  return 0
end
if held and m[1] ~= candidate then
  return 0
end
redis.call('HSET', K_MAINTAINER, 'holder', candidate, 'until', NOW + term)
return 1
