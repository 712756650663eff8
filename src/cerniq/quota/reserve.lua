-- Reserve WhatsApp quota atomically (cerniq.quota.guardian.QuotaGuardian.reserve and
-- reserve_many). One reservation takes the 3 keys and 5 arguments below; reserve_many's batch
-- form is described further down, and a batch is applied in order, atomically.
--
-- KEYS[1] quota:wa:{phone}:{day}      new contacts spent that business day (runbook key)
-- KEYS[2] quota:fu:wa:{phone}:{day}   follow-ups sent that business day
-- KEYS[3] quota:res:wa:{phone}:{day}  hash reservation_id -> cost
-- ARGV[1] reservation_id, ARGV[2] cost (0 or 1), ARGV[3] limit, ARGV[4] followup cap,
-- ARGV[5] ttl in seconds
--
-- Returns, per reservation, one line
-- "<allowed 0|1> <reason> <used> <followups_used> <cost_applied>", e.g. "1 QUOTA_OK 200 3 1",
-- lines joined with "\n" (a single bulk string parses several times faster than an array in
-- the Python client, which is what bounds throughput).
-- A reservation id already recorded returns ALREADY_RESERVED and spends nothing, so a retried
-- or recovered job never pays twice.

local function reply(allowed, reason, used, followups, applied)
  return allowed .. ' ' .. reason .. ' ' .. used .. ' ' .. followups .. ' ' .. applied
end

local function reserve(kq, kf, kr, rid, cost, limit, cap, ttl)
  cost = tonumber(cost)
  limit = tonumber(limit)
  cap = tonumber(cap)
  ttl = tonumber(ttl)
  local used = tonumber(redis.call('GET', kq) or '0')
  local followups = tonumber(redis.call('GET', kf) or '0')
  if used == nil or followups == nil then
    return nil, 'QUOTA_COUNTER_NOT_INTEGER ' .. kq
  end

  if redis.call('HEXISTS', kr, rid) == 1 then
    return reply(1, 'ALREADY_RESERVED', used, followups, 0)
  end

  if cost == 1 then
    if used + 1 > limit then
      return reply(0, 'QUOTA_EXCEEDED', used, followups, 0)
    end
    used = redis.call('INCR', kq)
    redis.call('EXPIRE', kq, ttl)
  else
    if followups >= cap then
      return reply(0, 'FOLLOWUP_CAP_EXCEEDED', used, followups, 0)
    end
    followups = redis.call('INCR', kf)
    redis.call('EXPIRE', kf, ttl)
  end

  redis.call('HSET', kr, rid, cost)
  redis.call('EXPIRE', kr, ttl)
  return reply(1, 'QUOTA_OK', used, followups, cost)
end

if #ARGV == 3 and ARGV[1] == 'BATCH' then
  -- reserve_many: KEYS are the distinct (counter, follow-ups, reservations) triples of the
  -- batch's phones and days; ARGV[2] the ttl; ARGV[3] one line per reservation,
  -- "<triple number from 1> <reservation_id> <cost> <limit> <followup cap>\n".
  local ttl = ARGV[2]
  local lines = {}
  for slot, rid, cost, limit, cap in string.gmatch(ARGV[3], '(%d+) (%S+) (%d+) (%d+) (%d+)\n') do
    local k = (tonumber(slot) - 1) * 3
    local line, err = reserve(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], rid, cost, limit, cap, ttl)
    if line == nil then
      -- The reservations before this one in the batch stand (a retry finds them ALREADY_RESERVED).
      return redis.error_reply(err)
    end
    lines[#lines + 1] = line
  end
  return table.concat(lines, '\n')
end

local line, err = reserve(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
if line == nil then
  return redis.error_reply(err)
end
return line
