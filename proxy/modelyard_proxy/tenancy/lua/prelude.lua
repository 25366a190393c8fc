-- Shared by every script (prepended): the store's clock and leaky buckets. The gateway names every key (all
-- under one consumer's hash tag, so one Redis Cluster slot) and every calendar period: no date arithmetic
-- nor key building here, it cost the store more than the commands themselves. Redis passes numbers to
-- commands as '%.17g', so whole numbers need no formatting.
if redis.replicate_commands then pcall(redis.replicate_commands) end

local MINUTE_US = 60000000

-- Microseconds since the epoch from the store (so pods with skewed clocks agree on rates), or a test's override.
local function clock_us(override)
  if override ~= nil and override ~= '' then return tonumber(override) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- A leaky bucket's level at now: the stored level drained at limit per minute since it was stored.
local function drained(level, at, limit, now)
  if not level then return 0 end
  local value = tonumber(level) - (now - tonumber(at)) * limit / MINUTE_US
  if value < 0 then return 0 end
  return value
end

-- A lease's member in the leases zset: '<id>', or '<id>|<micro-USD>|<period>:<label>...' when it holds a
-- cost, naming the spend hashes ('<base>budget:<period>:<label>') it is held in.
local function lease_hold(member) return string.match(member, '^[^|]+|(%d+)(.*)$') end
