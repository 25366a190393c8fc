-- Read one consumer's counts: the current periods' spend and live holds, and per-model use per day.
-- KEYS[1] rate hash (declares the consumer's slot). ARGV: base, days, clock override us.
local base, days = ARGV[1], tonumber(ARGV[2])
local now = clock_us(ARGV[3])
local now_s = math.floor(now / 1000000)
local result = {now = int(now), periods = {}, days = {}}
for _, p in ipairs(periods(now_s)) do
  local held = 0
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', holds_key(base, p[1], p[2]), '(' .. int(now), '+inf')) do
    held = held + hold_amount(member)
  end
  local spent = tonumber(redis.call('HGET', budget_key(base, p[1], p[2]), 'spent') or 0)
  result.periods[#result.periods + 1] = {p[1], p[2], p[3], spent, held}
end
local today = math.floor(now_s / 86400)
for back = 0, days - 1 do
  local label = day_label(today - back)
  result.days[#result.days + 1] = {label, redis.call('HGETALL', usage_key(base, label))}
end
return cjson.encode(result)
