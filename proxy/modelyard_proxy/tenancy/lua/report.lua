-- Read one consumer's counts: the current periods' spend and live holds, and per-model use per day.
-- KEYS[1..6] the hour's, day's and month's spend hash and holds zset, then each day's usage hash, newest
-- first. ARGV[1] clock override us ('' = the store's).
-- Returns {now, then spent and held micro-USD per period, then each day's fields and values}.
local now = clock_us(ARGV[1])
local result = {now}
for i = 1, 5, 2 do
  local held = 0
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[i + 1], '(' .. string.format('%.0f', now), '+inf')) do
    held = held + hold_amount(member)
  end
  result[#result + 1] = tonumber(redis.call('HGET', KEYS[i], 'spent') or 0)
  result[#result + 1] = held
end
for i = 7, #KEYS do
  result[#result + 1] = redis.call('HGETALL', KEYS[i])
end
return result
