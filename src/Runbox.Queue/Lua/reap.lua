-- ARGV[6..13]: grace ms, max tasks, max stalls, backoff base ms, backoff cap ms, jitter fraction,
-- random in [0, 1), dead-letter cap. Handles up to `max` leases expired for longer than the grace:
-- bumps the fence first (the frozen holder's later writes are stale from here on), counts the
-- stall, then cancels (flagged), times out (past the deadline) or fails, retrying with backoff
-- while policy and attempts allow; a task that stalled more than `max stalls` times is a poison
-- pill and is dead-lettered. Returns {trimmed, then (id, user, fence, attempt, kind, status,
-- retryAt) per task}. Idempotent: a second run finds the lease gone or the state changed.
local grace = tonumber(ARGV[6])
local max = tonumber(ARGV[7])
local max_stalls = tonumber(ARGV[8])
local base = tonumber(ARGV[9])
local cap = tonumber(ARGV[10])
local jitter = tonumber(ARGV[11])
local random = tonumber(ARGV[12])
local dead_cap = tonumber(ARGV[13])

local expired = redis.call('ZRANGE', K_LEASES, '-inf', NOW - grace, 'BYSCORE', 'LIMIT', 0, max)
local out = {0}
local trimmed = 0
for i, id in ipairs(expired) do
  local key = task_key(id)
  local t = redis.call('HMGET', key, 'state', 'user', 'prio', 'attempt', 'max', 'rinf', 'rto',
    'cancel', 'deadline')
  if t[1] ~= 'running' then
    redis.call('ZREM', K_LEASES, id)
  else
    local fence = redis.call('HINCRBY', key, 'fence', 1)
    local stalls = redis.call('HINCRBY', key, 'stalls', 1)
    local attempt = tonumber(t[4])
    local kind, status
    local run_at = 0
    if t[8] == '1' then
      kind, status = 'cancelled', 'cancelled'
    else
      local retryable
      if NOW >= tonumber(t[9]) then
        status, retryable = 'timeout', t[7] == '1'
      else
        status, retryable = 'failed', t[6] == '1'
      end
      if stalls > max_stalls then
        kind = 'dead'
      elseif not retryable then
        kind = 'failed'
      elseif attempt >= tonumber(t[5]) then
        kind = 'dead'
      else
        kind = 'retry'
        -- Spread the one random number over the batch (golden-ratio steps) so tasks reaped
        -- together do not all come back at the same instant.
        local r = (random + i * 0.6180339887) % 1
        run_at = NOW + backoff_ms(attempt, base, cap, jitter, r)
      end
    end
    trimmed = trimmed + apply_outcome(id, t[2], tonumber(t[3]), fence, attempt, kind, status,
      run_at, dead_cap, 'lease_expired', '')
    out[#out + 1] = id
    out[#out + 1] = t[2]
    out[#out + 1] = fence
    out[#out + 1] = attempt
    out[#out + 1] = kind
    out[#out + 1] = status
    out[#out + 1] = run_at
  end
end
out[1] = trimmed
return out
