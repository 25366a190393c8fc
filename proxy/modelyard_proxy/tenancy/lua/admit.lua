-- Admit one request: check every limit, and only when all pass, apply them all. Atomic, one round trip.
-- KEYS[1] rate hash (rl, rt: requests level and time; tl, tt: tokens), KEYS[2] leases zset (id by expiry).
-- ARGV: base, lease id, tokens, ask micro-USD, hold us, rpm, tpm, concurrent (0 = none),
--       hour, day, month budgets in micro-USD (-1 = none), clock override us ('' = the store's),
--       period key margin s.
local base, lease = ARGV[1], ARGV[2]
local tokens, ask, hold_us = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local rpm, tpm, cap = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local budgets = {hour = tonumber(ARGV[9]), day = tonumber(ARGV[10]), month = tonumber(ARGV[11])}
local now = clock_us(ARGV[12])
local margin = tonumber(ARGV[13])
local now_s = math.floor(now / 1000000)

local state = redis.call('HMGET', KEYS[1], 'rl', 'rt', 'tl', 'tt')
local request_level = rpm > 0 and drained(state[1], state[2], rpm, now) or 0
local token_level = tpm > 0 and drained(state[3], state[4], tpm, now) or 0

redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', int(now))
local current = periods(now_s)

-- Expired holds (a pod died before settling) give their amount back: reservations expire, never leak.
local books = {}
for _, p in ipairs(current) do
  local bkey, hkey = budget_key(base, p[1], p[2]), holds_key(base, p[1], p[2])
  local expired = redis.call('ZRANGEBYSCORE', hkey, '-inf', int(now), 'LIMIT', 0, 512)
  if #expired > 0 then
    local freed = 0
    for _, member in ipairs(expired) do freed = freed + hold_amount(member) end
    redis.call('ZREM', hkey, unpack(expired))
    redis.call('HINCRBY', bkey, 'held', int(-freed))
  end
  local book = redis.call('HMGET', bkey, 'spent', 'held')
  books[#books + 1] = {p = p, bkey = bkey, hkey = hkey, spent = tonumber(book[1] or 0), held = tonumber(book[2] or 0)}
end

local result = {now = int(now)}
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
  for _, book in ipairs(books) do
    local budget = budgets[book.p[1]]
    if budget >= 0 and (book.spent >= budget or book.spent + book.held + ask > budget) then
      outcome = 'budget'
      result.shortfall = {book.p[1], budget, book.spent, book.held, book.p[3]}
      break
    end
  end
end

if outcome == 'ok' then
  local expires = now + hold_us
  if rpm > 0 then request_level = request_level + 1 end
  if tpm > 0 then token_level = token_level + tokens end
  redis.call('HSET', KEYS[1], 'rl', string.format('%.17g', request_level), 'rt', int(now),
    'tl', string.format('%.17g', token_level), 'tt', int(now))
  -- Kept while either bucket still holds something (a full bucket drains in a minute).
  local drain_ms = 1000
  if rpm > 0 then drain_ms = math.max(drain_ms, request_level * 60000 / rpm + 1000) end
  if tpm > 0 then drain_ms = math.max(drain_ms, token_level * 60000 / tpm + 1000) end
  redis.call('PEXPIRE', KEYS[1], int(drain_ms))
  redis.call('ZADD', KEYS[2], int(expires), lease)
  keep_for(KEYS[2], hold_us / 1000 + 1000)
  for _, book in ipairs(books) do
    if ask > 0 then
      redis.call('HINCRBY', book.bkey, 'held', int(ask))
      redis.call('ZADD', book.hkey, int(expires), lease .. '|' .. int(ask))
    end
    redis.call('EXPIREAT', book.bkey, int(book.p[3] + margin))
    redis.call('EXPIREAT', book.hkey, int(book.p[3] + margin))
  end
  result.expires = int(expires)
  result.periods = current
end
result.outcome = outcome
result.request_level = request_level
result.token_level = token_level
return cjson.encode(result)
