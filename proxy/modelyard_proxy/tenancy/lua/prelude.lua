-- Shared by every script (prepended): the store's clock, UTC calendar periods, and key names.
-- Every key of a consumer starts with ARGV[1] = '<prefix>{<consumer>}:' so all of them hash to one
-- Redis Cluster slot, the slot of the keys the script declares.
if redis.replicate_commands then pcall(redis.replicate_commands) end

local MINUTE_US = 60000000

-- Microseconds since the epoch from the store (so pods with skewed clocks agree), or a test's override.
local function clock_us(override)
  if override ~= nil and override ~= '' then return tonumber(override) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Integers as strings, never '1.7e+15': Lua would otherwise hand Redis 14 significant digits.
local function int(x) return string.format('%.0f', x) end

-- Days since 1970-01-01 to year, month, day (proleptic Gregorian; H. Hinnant's civil_from_days).
local function civil(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function day_label(days)
  local y, m, d = civil(days)
  return string.format('%04d-%02d-%02d', y, m, d)
end

-- The hour, day and month containing now_s: {period, label, end (epoch seconds)} each.
local function periods(now_s)
  local days = math.floor(now_s / 86400)
  local y, m = civil(days)
  local hour = math.floor((now_s - days * 86400) / 3600)
  local day = day_label(days)
  local ny, nm = y, m + 1
  if nm > 12 then ny, nm = y + 1, 1 end
  return {
    {'hour', string.format('%sT%02d', day, hour), days * 86400 + (hour + 1) * 3600},
    {'day', day, (days + 1) * 86400},
    {'month', string.format('%04d-%02d', y, m), days_from_civil(ny, nm, 1) * 86400},
  }
end

-- A period's spend (hash: spent, held micro-USD) and its holds (zset: '<lease>|<micro-USD>' by expiry).
local function budget_key(base, period, label) return base .. 'budget:' .. period .. ':' .. label end
local function holds_key(base, period, label) return base .. 'holds:' .. period .. ':' .. label end
local function usage_key(base, day) return base .. 'usage:' .. day end

local function hold_amount(member) return tonumber(string.match(member, '|(%d+)$')) end

-- A leaky bucket's level at now: the stored level drained at limit per minute since it was stored.
local function drained(level, at, limit, now)
  if not level then return 0 end
  local value = tonumber(level) - (now - tonumber(at)) * limit / MINUTE_US
  if value < 0 then return 0 end
  return value
end

-- Lengthen a key's life to at least ms milliseconds (never shorten it).
local function keep_for(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, int(ms)) end
end
