-- Admit one request: check every limit, and only when all pass, apply them all. Atomic, one round trip.
-- KEYS[1] rate hash (rl, rt: requests level and time; tl, tt: tokens), KEYS[2] leases zset (id by expiry),
--   then for each period with a budget (hour, day, month order): its spend hash (spent, held) and its
--   holds zset ('<lease>|<micro-USD>' by expiry).
-- ARGV[1] lease id; ARGV[2] 'tokens ask-micro-USD hold-us rpm tpm concurrent clock-override' (0 = no
--   limit, '' = the store's clock); then per budgeted period: budget micro-USD, when its keys expire (s).
-- Returns {'ok', now, request level, token level, expiry} or {refusal, now, request level, token level}
--   and, for 'budget', the refusing period's place among the budgeted ones, its spent and held micro-USD.
-- Levels are in millionths.
local lease = ARGV[1]
local t, a, h, r, tp, c, o = string.match(ARGV[2], '^(%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d*)$')
local tokens, ask, hold_us = tonumber(t), tonumber(a), tonumber(h)
local rpm, tpm, cap = tonumber(r), tonumber(tp), tonumber(c)
local now = clock_us(o)

local state = redis.call('HMGET', KEYS[1], 'rl', 'rt', 'tl', 'tt')
local request_level = rpm > 0 and drained(state[1], state[2], rpm, now) or 0
local token_level = tpm > 0 and drained(state[3], state[4], tpm, now) or 0
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)

-- Expired holds (a pod died before settling) give their amount back: reservations expire, never leak.
local books = {}
for i = 3, #KEYS, 2 do
  local bkey, hkey = KEYS[i], KEYS[i + 1]
  local expired = redis.call('ZRANGEBYSCORE', hkey, '-inf', now, 'LIMIT', 0, 512)
  if #expired > 0 then
    local freed = 0
    for _, member in ipairs(expired) do freed = freed + hold_amount(member) end
    redis.call('ZREM', hkey, unpack(expired))
    redis.call('HINCRBY', bkey, 'held', -freed)
  end
  local book = redis.call('HMGET', bkey, 'spent', 'held')
  books[#books + 1] = {bkey, hkey, tonumber(book[1] or 0), tonumber(book[2] or 0)}
end

local outcome = 'ok'
if tpm > 0 and tokens > tpm then
  outcome = 'tokens_oversize'
elseif rpm > 0 and request_level + 1 > rpm then
  outcome = 'requests'
elseif tpm > 0 and token_level + tokens > tpm then
  outcome = 'tokens'
elseif cap > 0 and redis.call('ZCARD', KEYS[2]) >= cap then
  outcome = 'concurrency'
else
  for i, book in ipairs(books) do
    local budget, spent, held = tonumber(ARGV[1 + 2 * i]), book[3], book[4]
    if spent >= budget or spent + held + ask > budget then
      return {'budget', now, math.floor(request_level * 1000000), math.floor(token_level * 1000000), i, spent, held}
    end
  end
end
if outcome ~= 'ok' then
  return {outcome, now, math.floor(request_level * 1000000), math.floor(token_level * 1000000)}
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
redis.call('ZADD', KEYS[2], expires, lease)
keep_for(KEYS[2], hold_us / 1000 + 1000)
if ask > 0 then
  local member = lease .. '|' .. a
  for i, book in ipairs(books) do
    local until_s = ARGV[2 + 2 * i]
    redis.call('HINCRBY', book[1], 'held', ask)
    redis.call('ZADD', book[2], expires, member)
    redis.call('EXPIREAT', book[1], until_s)
    redis.call('EXPIREAT', book[2], until_s)
  end
end
return {'ok', now, math.floor(request_level * 1000000), math.floor(token_level * 1000000), expires}
