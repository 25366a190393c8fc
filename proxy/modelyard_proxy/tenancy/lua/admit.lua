-- Admit one request: check every limit, and only when all pass, apply them all. Atomic, one round trip.
-- KEYS[1] '<base>rate' (rl, rt: requests level and time; tl, tt: tokens), KEYS[2] leases zset (member by
--   expiry: the requests in flight and the costs they hold), then the spend hash (spent, held micro-USD)
--   of each period with a budget, in hour, day, month order.
-- ARGV[1] the lease's member; ARGV[2] 'tokens ask-micro-USD hold-us rpm tpm concurrent clock-override'
--   (0 = no limit, '' = the store's clock); then per budgeted period: its budget (micro-USD) and when its
--   spend hash expires (epoch s).
-- Answers one status line (the cheapest reply to read): 'ok <now> <request level> <token level> <expiry>'
--   or '<refusal> <now> <request level> <token level>' and, for 'budget', the refusing period's place among
--   the budgeted ones, its spent and held micro-USD. Levels are in millionths, times in microseconds.
local t, a, h, r, tp, c, o = string.match(ARGV[2], '^(%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d*)$')
local tokens, ask, hold_us = tonumber(t), tonumber(a), tonumber(h)
local rpm, tpm, cap = tonumber(r), tonumber(tp), tonumber(c)
local now = clock_us(o)

local state = redis.call('HMGET', KEYS[1], 'rl', 'rt', 'tl', 'tt')
local request_level = rpm > 0 and drained(state[1], state[2], rpm, now) or 0
local token_level = tpm > 0 and drained(state[3], state[4], tpm, now) or 0

-- Expired leases (a pod died before settling) give their holds back: reservations expire, never leak.
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 256)
if #expired > 0 then
  local base = string.sub(KEYS[1], 1, -5)
  for _, member in ipairs(expired) do
    local amount, books = lease_hold(member)
    if amount then
      for book in string.gmatch(books, '|([^|]+)') do
        redis.call('HINCRBY', base .. 'budget:' .. book, 'held', -tonumber(amount))
      end
    end
  end
  redis.call('ZREM', KEYS[2], unpack(expired))
end

-- The requests in flight: every lease left once the expired ones are gone (or counted past them when there
-- were more expired ones than one call removes).
local function live_leases()
  if #expired < 256 then return redis.call('ZCARD', KEYS[2]) end
  return redis.call('ZCOUNT', KEYS[2], string.format('(%.0f', now), '+inf')
end
-- The outcome, the store's time and the bucket levels, then what the outcome adds.
local function answer(outcome, extra)
  return {ok = string.format('%s %.0f %.0f %.0f%s', outcome, now, math.floor(request_level * 1000000),
    math.floor(token_level * 1000000), extra)}
end
if tpm > 0 and tokens > tpm then
  return answer('tokens_oversize', '')
elseif rpm > 0 and request_level + 1 > rpm then
  return answer('requests', '')
elseif tpm > 0 and token_level + tokens > tpm then
  return answer('tokens', '')
elseif cap > 0 and live_leases() >= cap then
  return answer('concurrency', '')
end
for i = 3, #KEYS do
  local book = redis.call('HMGET', KEYS[i], 'spent', 'held')
  local budget, spent, held = tonumber(ARGV[2 * i - 3]), tonumber(book[1] or 0), tonumber(book[2] or 0)
  if spent >= budget or spent + held + ask > budget then
    return answer('budget', string.format(' %d %.0f %.0f', i - 2, spent, held))
  end
end

local expires = now + hold_us
if rpm > 0 then request_level = request_level + 1 end
if tpm > 0 then token_level = token_level + tokens end
redis.call('HSET', KEYS[1], 'rl', string.format('%.17g', request_level), 'rt', now,
  'tl', string.format('%.17g', token_level), 'tt', now)
-- Kept while either bucket still holds something (a full bucket drains in a minute).
local drain_ms = 1000
if rpm > 0 then drain_ms = math.max(drain_ms, request_level * 60000 / rpm + 1000) end
if tpm > 0 then drain_ms = math.max(drain_ms, token_level * 60000 / tpm + 1000) end
redis.call('PEXPIRE', KEYS[1], math.floor(drain_ms))
redis.call('ZADD', KEYS[2], expires, ARGV[1])
-- Kept past its last lease's expiry; extended a minute beyond that, so that requests with the same hold
-- extend it once a minute rather than each time (an empty zset is deleted at once whatever its expiry).
local keep_ms = math.floor(hold_us / 1000) + 1000
if redis.call('PTTL', KEYS[2]) < keep_ms then redis.call('PEXPIRE', KEYS[2], keep_ms + 60000) end
if ask > 0 then
  for i = 3, #KEYS do
    -- A new spend hash gets its expiry; one that exists has it already.
    if redis.call('HINCRBY', KEYS[i], 'held', ask) == ask then redis.call('EXPIREAT', KEYS[i], ARGV[2 * i - 2]) end
  end
end
return answer('ok', string.format(' %.0f', expires))
