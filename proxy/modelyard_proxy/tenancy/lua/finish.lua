-- Settle (real usage) or release (a failed request) one lease. Atomic and idempotent until the lease's
-- expiry: a finished lease leaves a tombstone (KEYS[3]) until then, so a settlement replayed after a lost
-- reply is not counted twice, while one replayed into a store that lost the lease (a restart) still counts.
-- KEYS[1] rate hash, KEYS[2] leases zset, KEYS[3] finished leases zset (id by expiry).
-- ARGV: base, lease id, reserved tokens, held micro-USD, lease expiry us, tpm (0 = none),
--       real tokens, real micro-USD, record (1 = settle, 0 = release), model, input, output tokens,
--       clock override us, period key margin s, usage retention s, then (period, label, end s) for each
--       period held in.
local base, lease = ARGV[1], ARGV[2]
local reserved, held, expires, tpm = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local used, cost, record = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9] == '1'
local model, input, output = ARGV[10], ARGV[11], ARGV[12]
local now = clock_us(ARGV[13])
local margin, retention = tonumber(ARGV[14]), ARGV[15]

redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', int(now))
if redis.call('ZSCORE', KEYS[3], lease) then return 'duplicate' end
local live = redis.call('ZREM', KEYS[2], lease) == 1
if now < expires then
  redis.call('ZADD', KEYS[3], int(expires), lease)
  keep_for(KEYS[3], (expires - now) / 1000 + 1000)
end

for i = 16, #ARGV, 3 do
  local period, label, ends = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local bkey = budget_key(base, period, label)
  if held > 0 and redis.call('ZREM', holds_key(base, period, label), lease .. '|' .. int(held)) == 1 then
    redis.call('HINCRBY', bkey, 'held', int(-held))
  end
  if cost > 0 then
    -- Spend already done is always recorded, even past the budget.
    redis.call('HINCRBY', bkey, 'spent', int(cost))
    redis.call('EXPIREAT', bkey, int(math.max(ends, now / 1000000) + margin))
  end
end

if live and tpm > 0 and used ~= reserved then
  local state = redis.call('HMGET', KEYS[1], 'tl', 'tt')
  local level = math.max(0, drained(state[1], state[2], tpm, now) - (reserved - used))
  redis.call('HSET', KEYS[1], 'tl', string.format('%.17g', level), 'tt', int(now))
  keep_for(KEYS[1], level * 60000 / tpm + 1000)
end

if record then
  local ukey = usage_key(base, day_label(math.floor(now / 86400000000)))
  redis.call('HINCRBY', ukey, model .. '|requests', 1)
  redis.call('HINCRBY', ukey, model .. '|input', input)
  redis.call('HINCRBY', ukey, model .. '|output', output)
  redis.call('HINCRBY', ukey, model .. '|cost', int(cost))
  redis.call('EXPIRE', ukey, retention)
end
return live and 'settled' or 'late'
