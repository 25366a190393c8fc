-- Settle (real usage) or release (a failed request) one lease. Atomic, and idempotent for MARKER seconds:
-- a finished lease leaves a marker (KEYS[3]) that long, so a settlement replayed after a lost reply is not
-- counted twice, while one replayed into a store that lost the lease (a restart) still counts. Markers
-- live a fixed time whatever the lease's hold, so the store keeps at most that many seconds of requests.
-- KEYS[1] rate hash, KEYS[2] leases zset, KEYS[3] finish markers zset (id by expiry), KEYS[4] the day's
--   usage hash, KEYS[5..7] the hour's, day's and month's spend hashes, then the holds zset of each period
--   the lease held in.
-- ARGV[1] lease id; ARGV[2] 'reserved-tokens held-micro-USD expiry-us tpm used-tokens micro-USD record
--   input output marker-s usage-retention-s clock-override' (record 1 = settle, 0 = release); ARGV[3]
--   model; ARGV[4] the held periods' places among the three ('23' = day and month); ARGV[5..7] when each
--   period's spend hash expires (s).
local lease = ARGV[1]
local rs, hd, ex, tp, us, co, rc, i_, o_, mk, rt, ov = string.match(ARGV[2],
  '^(%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d) (%d+) (%d+) (%d+) (%d+) (%d*)$')
local reserved, held, expires, tpm = tonumber(rs), tonumber(hd), tonumber(ex), tonumber(tp)
local used, cost = tonumber(us), tonumber(co)
local now = clock_us(ov)

redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZADD', KEYS[3], 'NX', now + tonumber(mk) * 1000000, lease) == 0 then return 'duplicate' end
redis.call('PEXPIRE', KEYS[3], tonumber(mk) * 1000 + 1000)
local live = redis.call('ZREM', KEYS[2], lease) == 1

local places = ARGV[4]
if held > 0 then
  local member = lease .. '|' .. hd
  for i = 1, #places do
    local place = tonumber(string.sub(places, i, i))
    if redis.call('ZREM', KEYS[7 + i], member) == 1 then redis.call('HINCRBY', KEYS[4 + place], 'held', -held) end
  end
end
if cost > 0 then
  -- Spend already done is always recorded, even past the budget.
  for place = 1, 3 do
    redis.call('HINCRBY', KEYS[4 + place], 'spent', cost)
    redis.call('EXPIREAT', KEYS[4 + place], ARGV[4 + place])
  end
end

if live and tpm > 0 and used ~= reserved then
  local state = redis.call('HMGET', KEYS[1], 'tl', 'tt')
  local level = math.max(0, drained(state[1], state[2], tpm, now) - (reserved - used))
  redis.call('HSET', KEYS[1], 'tl', string.format('%.17g', level), 'tt', now)
  keep_for(KEYS[1], level * 60000 / tpm + 1000)
end

if rc == '1' then
  local model = ARGV[3]
  redis.call('HINCRBY', KEYS[4], model .. '|requests', 1)
  redis.call('HINCRBY', KEYS[4], model .. '|input', i_)
  redis.call('HINCRBY', KEYS[4], model .. '|output', o_)
  redis.call('HINCRBY', KEYS[4], model .. '|cost', cost)
  redis.call('EXPIRE', KEYS[4], rt)
end
return live and 'settled' or 'late'
