-- Rebuild one phone's quota keys for one business day from the ledger (cerniq.quota.service.resync_day).
--
-- KEYS[1] quota:wa:{phone}:{day}, KEYS[2] quota:fu:wa:{phone}:{day}, KEYS[3] quota:res:wa:{phone}:{day}
-- ARGV[1] ttl in seconds, ARGV[2] n = how many reservation ids to drop, ARGV[3 .. 2+n] those ids,
-- then pairs (reservation_id, cost) of the ledger.
--
-- The ledger's reservations are written into the hash (a retried row is still recognised), the
-- dropped ones (neither in the ledger nor in flight) removed, and both counters set to what the
-- hash then holds, in one atomic step: a reservation made meanwhile by a send is kept and counted.
-- Returns {counter before (-1 when absent), counter after, follow-ups after}.

local ttl = tonumber(ARGV[1])
local drops = tonumber(ARGV[2])
local before = redis.call('GET', KEYS[1])
for i = 3, 2 + drops do
  redis.call('HDEL', KEYS[3], ARGV[i])
end
for i = 3 + drops, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
local new_contacts, followups = 0, 0
for _, cost in ipairs(redis.call('HVALS', KEYS[3])) do
  if tonumber(cost) == 0 then
    followups = followups + 1
  else
    new_contacts = new_contacts + tonumber(cost)
  end
end
redis.call('SET', KEYS[1], new_contacts, 'EX', ttl)
redis.call('SET', KEYS[2], followups, 'EX', ttl)
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('EXPIRE', KEYS[3], ttl)
end
local before_value = -1
if before then
  before_value = tonumber(before) or -1
end
return {before_value, new_contacts, followups}
