-- Read one consumer's counts: the current periods' spend and live holds, and per-model use per day.
-- KEYS[1] leases zset, KEYS[2..4] the hour's, day's and month's spend hashes, then each day's usage hash,
-- newest first. ARGV[1] clock override us ('' = the store's); ARGV[2..4] the periods as leases name them
-- ('day:2036-12-06').
-- Returns {now, then spent and held micro-USD per period, then each day's fields and values}.
local now = clock_us(ARGV[1])
local held = {0, 0, 0}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now), '+inf')) do
  local amount, books = lease_hold(member)
  if amount then
    for book in string.gmatch(books, '|([^|]+)') do
      for i = 1, 3 do
        if book == ARGV[i + 1] then held[i] = held[i] + tonumber(amount) end
      end
    end
  end
end
local result = {now}
for i = 1, 3 do
  result[#result + 1] = tonumber(redis.call('HGET', KEYS[i + 1], 'spent') or 0)
  result[#result + 1] = held[i]
end
for i = 5, #KEYS do
  result[#result + 1] = redis.call('HGETALL', KEYS[i])
end
return result
