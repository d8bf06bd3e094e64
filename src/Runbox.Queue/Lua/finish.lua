--! args: id fence kind status retry_at dead_cap
-- kind: completed|cancelled|retry|dead|failed; retry_at: ms, for a retry; dead_cap: the most dead
-- letters kept. Returns {applied (1|0), dead letters trimmed}.
-- Fenced: only the current attempt's holder may end it. A repeat of a finish that was already
-- applied (a cancelled call that reached Redis, then a retry) answers 1 again and changes nothing.
local id = ARGV[6]
local fence = ARGV[7]
local kind = ARGV[8]
local status = ARGV[9]
local key = task_key(id)
local t = redis.call('HMGET', key, 'state', 'fence', 'user', 'prio', 'attempt', 'outcome', 'owner')
if t[2] == fence and t[1] ~= 'running' and t[6] == kind then
  return {1, 0}
end
if t[1] ~= 'running' or t[2] ~= fence then
  record(id, t[1] or '', status, fence, t[5] or '', 'stale_write_rejected', '')
  return {0, 0}
end
local trimmed = apply_outcome(id, t[3], tonumber(t[4]), fence, t[5], kind, status,
  tonumber(ARGV[10]), tonumber(ARGV[11]), kind, t[7])
return {1, trimmed}
