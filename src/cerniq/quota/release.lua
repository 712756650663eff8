-- Release one quota reservation (cerniq.quota.guardian.QuotaGuardian.release).
--
-- KEYS[1] quota:wa:{phone}:{day}, KEYS[2] quota:fu:wa:{phone}:{day},
-- KEYS[3] quota:res:wa:{phone}:{day}; ARGV[1] reservation_id.
--
-- Returns 1 when the reservation existed (it is removed and its counter decremented, never
-- below 0), 0 when there was nothing to release. DECR keeps the key's TTL.

local cost = redis.call('HGET', KEYS[3], ARGV[1])
if not cost then
  return 0
end
redis.call('HDEL', KEYS[3], ARGV[1])

local counter = KEYS[1]
if tonumber(cost) == 0 then
  counter = KEYS[2]
end
local value = tonumber(redis.call('GET', counter) or '0')
if value ~= nil and value > 0 then
  redis.call('DECR', counter)
end
return 1
