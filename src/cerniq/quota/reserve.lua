-- Reserve WhatsApp quota for one send, atomically (cerniq.quota.guardian.QuotaGuardian.reserve).
--
-- KEYS[1] quota:wa:{phone}:{day}      new contacts spent that business day (runbook key)
-- KEYS[2] quota:fu:wa:{phone}:{day}   follow-ups sent that business day
-- KEYS[3] quota:res:wa:{phone}:{day}  hash reservation_id -> cost
-- ARGV[1] reservation_id, ARGV[2] cost (0 or 1), ARGV[3] limit, ARGV[4] followup cap,
-- ARGV[5] ttl in seconds
--
-- Returns one line "<allowed 0|1> <reason> <used> <followups_used> <cost_applied>", e.g.
-- "1 QUOTA_OK 200 3 1" (a single bulk string parses several times faster than an array in
-- the Python client, which is what bounds throughput).
-- A reservation id already recorded returns ALREADY_RESERVED and spends nothing, so a retried
-- or recovered job never pays twice.

local function reply(allowed, reason, used, followups, applied)
  return allowed .. ' ' .. reason .. ' ' .. used .. ' ' .. followups .. ' ' .. applied
end

local rid = ARGV[1]
local cost = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])

local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local followups = tonumber(redis.call('GET', KEYS[2]) or '0')
if used == nil or followups == nil then
  return redis.error_reply('QUOTA_COUNTER_NOT_INTEGER ' .. KEYS[1])
end

if redis.call('HEXISTS', KEYS[3], rid) == 1 then
  return reply(1, 'ALREADY_RESERVED', used, followups, 0)
end

if cost == 1 then
  if used + 1 > limit then
    return reply(0, 'QUOTA_EXCEEDED', used, followups, 0)
  end
  used = redis.call('INCR', KEYS[1])
  redis.call('EXPIRE', KEYS[1], ttl)
else
  if followups >= cap then
    return reply(0, 'FOLLOWUP_CAP_EXCEEDED', used, followups, 0)
  end
  followups = redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ttl)
end

redis.call('HSET', KEYS[3], rid, cost)
redis.call('EXPIRE', KEYS[3], ttl)
return reply(1, 'QUOTA_OK', used, followups, cost)
