-- Settle (real usage) or release (a failed request) one lease. Atomic, and idempotent for a fixed time: a
-- finished lease leaves a marker (KEYS[7], its own key) that long, so a settlement replayed after a lost
-- reply is not counted twice, while one replayed into a store that lost the lease (a restart) still counts.
-- Markers live that time whatever the lease's hold: the store keeps minutes of requests' markers, never hours'.
-- KEYS[1] rate hash, KEYS[2] leases zset, KEYS[3] the day's usage hash, KEYS[4..6] the hour's, day's and
--   month's spend hashes, KEYS[7] the lease's finish marker.
-- ARGV[1] the lease's member; ARGV[2] 'reserved-tokens held-micro-USD tpm used-tokens micro-USD record
--   input output marker-s usage-retention-s clock-override' (record 1 = settle, 0 = release); ARGV[3]
--   model; ARGV[4] the places of the periods it holds in ('23' = day and month); ARGV[5..7] when each
--   period's spend hash expires (epoch s).
-- Answers a status line: 'settled', 'late' (its lease had expired) or 'duplicate'.
local member = ARGV[1]
local rs, hd, tp, us, co, rc, i_, o_, mk, rt, ov = string.match(ARGV[2],
  '^(%d+) (%d+) (%d+) (%d+) (%d+) (%d) (%d+) (%d+) (%d+) (%d+) (%d*)$')
local reserved, held, tpm, used, cost = tonumber(rs), tonumber(hd), tonumber(tp), tonumber(us), tonumber(co)
local now = clock_us(ov)

if not redis.call('SET', KEYS[7], '1', 'PX', tonumber(mk) * 1000, 'NX') then return {ok = 'duplicate'} end
-- Not live: it expired (its hold went back then) or the store lost it.
local live = redis.call('ZREM', KEYS[2], member) == 1

if live and held > 0 then
  local places = ARGV[4]
  for i = 1, #places do redis.call('HINCRBY', KEYS[3 + tonumber(string.sub(places, i, i))], 'held', -held) end
end
if cost > 0 then
  -- Spend already done is always recorded, even past the budget.
  for place = 1, 3 do
    if redis.call('HINCRBY', KEYS[3 + place], 'spent', cost) == cost then
      redis.call('EXPIREAT', KEYS[3 + place], ARGV[4 + place])
    end
  end
end

if live and tpm > 0 and used ~= reserved then
  local state = redis.call('HMGET', KEYS[1], 'tl', 'tt')
  local level = math.max(0, drained(state[1], state[2], tpm, now) - (reserved - used))
  redis.call('HSET', KEYS[1], 'tl', string.format('%.17g', level), 'tt', now)
  local keep_ms = math.floor(level * 60000 / tpm) + 1000
  if redis.call('PTTL', KEYS[1]) < keep_ms then redis.call('PEXPIRE', KEYS[1], keep_ms) end
end

if rc == '1' then
  local model = ARGV[3]
  if redis.call('HINCRBY', KEYS[3], model .. '|requests', 1) == 1 then redis.call('EXPIRE', KEYS[3], rt) end
  redis.call('HINCRBY', KEYS[3], model .. '|input', i_)
  redis.call('HINCRBY', KEYS[3], model .. '|output', o_)
  redis.call('HINCRBY', KEYS[3], model .. '|cost', cost)
end
return {ok = live and 'settled' or 'late'}
