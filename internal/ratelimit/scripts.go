package ratelimit

import "github.com/redis/go-redis/v9"

// The scripts run on Redis's clock (TIME), in microseconds since 2025-01-01 so the doubles keep
// sub-microsecond precision for decades. Every script touches only the keys of one subject, which
// share a hash tag, so they work on Redis Cluster. They need Redis 5 or later (effects
// replication of scripts that call TIME before writing).
//
// Why not go-redis/redis_rate: its GCRA (the same algorithm, from rwz/redis-gcra) takes one key
// per call, so checking requests, images and megapixels is three round trips that are not atomic
// together: a request refused on images would already have consumed a request. Undoing that needs
// a refund, which redis_rate lacks (AllowN with a negative cost does not write the TAT back when
// the refund reaches "now", so a refund that empties the bucket is silently lost), and concurrent
// callers would see the transient charge. admitScript is redis_rate's AllowN arithmetic generalised
// to up to three dimensions plus a lease set, checked together and written only if all fit: one
// round trip, all or nothing.

// admitScript checks and charges one subject.
//
//	KEYS: rpm, ipm, mppm (TAT strings), inflight (sorted set: lease id → expiry µs)
//	ARGV: for each of the 3 rate dimensions: period µs (0 = unlimited), count, burst, cost;
//	      then concurrency limit (0 = unlimited), lease TTL µs, lease id;
//	      then any number of lease ids to remove first: the caller's releases of this subject
//	      that Redis has not confirmed yet (removing one twice, or one that expired, is harmless)
//	Reply: allowed, then per rate dimension: refused, remaining, reset µs, retry µs;
//	       then concurrency refused, remaining, and when refused the µs until the earliest
//	       lease expires (its Retry-After).
var admitScript = redis.NewScript(`
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1735689600) * 1000000 + tonumber(t[2])
for i = 16, #ARGV, 1000 do
  redis.call('ZREM', KEYS[4], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local ok = 1
local qs = {}
local newtat = {}
for i = 1, 3 do
  local b = (i - 1) * 4
  local period = tonumber(ARGV[b + 1])
  -- refused, remaining, reset, retry; remaining and reset are after the charge if it fits
  local q = {0, 0, 0, 0}
  if period > 0 then
    local count = tonumber(ARGV[b + 2])
    local burst = tonumber(ARGV[b + 3])
    local cost = tonumber(ARGV[b + 4])
    local em = period / count
    local boff = em * burst
    local tol = math.min(1, em / 4)
    local tat = tonumber(redis.call('GET', KEYS[i]) or 0)
    if tat < now then tat = now end
    local nt = tat + em * cost
    if nt - now <= boff + tol then
      q = {0, math.floor((boff - (nt - now) + tol) / em), math.ceil(nt - now), 0,
           math.floor((boff - (tat - now) + tol) / em), math.ceil(tat - now)}
      if cost > 0 then newtat[i] = nt end
    else
      ok = 0
      q = {1, math.max(math.floor((boff - (tat - now) + tol) / em), 0), math.ceil(tat - now),
           math.ceil(nt - now - boff)}
    end
  end
  qs[i] = q
end
local climit = tonumber(ARGV[13])
local crefused, cremaining, cretry = 0, 0, 0
if climit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  local used = redis.call('ZCARD', KEYS[4])
  if used < climit then
    cremaining = climit - used - 1
  else
    ok = 0
    crefused = 1
    local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
    if first[2] then cretry = math.ceil(tonumber(first[2]) - now) end
  end
end
-- Flatten; a refusal charges nothing, so dimensions that fit report their uncharged state.
local flat = {ok}
for i = 1, 3 do
  local q = qs[i]
  if ok == 0 and q[1] == 0 and q[5] then
    q[2], q[3] = q[5], q[6]
  end
  for j = 1, 4 do flat[#flat + 1] = q[j] end
end
flat[#flat + 1] = crefused
flat[#flat + 1] = cremaining
flat[#flat + 1] = cretry
if ok == 1 then
  for i = 1, 3 do
    if newtat[i] then
      redis.call('SET', KEYS[i], newtat[i], 'PX', math.ceil((newtat[i] - now) / 1000) + 1)
    end
  end
  if climit > 0 then
    local ttl = tonumber(ARGV[14])
    redis.call('ZADD', KEYS[4], now + ttl, ARGV[15])
    local want = math.ceil(ttl / 1000) + 1
    if redis.call('PTTL', KEYS[4]) < want then
      redis.call('PEXPIRE', KEYS[4], want)
    end
  end
end
return flat
`)

// giveBackScript refunds units to one subject's rate dimensions, never past a full bucket.
//
//	KEYS: rpm, ipm, mppm
//	ARGV: for each rate dimension: period µs (0 = skip), count, units to give back
var giveBackScript = redis.NewScript(`
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1735689600) * 1000000 + tonumber(t[2])
for i = 1, 3 do
  local b = (i - 1) * 3
  local period = tonumber(ARGV[b + 1])
  local units = tonumber(ARGV[b + 3])
  if period > 0 and units > 0 then
    local tat = tonumber(redis.call('GET', KEYS[i]) or 0)
    if tat > now then
      local nt = tat - (period / tonumber(ARGV[b + 2])) * units
      if nt <= now then
        redis.call('DEL', KEYS[i])
      else
        redis.call('SET', KEYS[i], nt, 'PX', math.ceil((nt - now) / 1000) + 1)
      end
    end
  end
end
return 1
`)

// renewScript extends live leases of one subject by the TTL from now; the background loop sends
// one call per subject and pass, all subjects in one pipeline. It purges expired leases first (as
// admitScript does), then moves every given lease that is still there to now+TTL in one ZADD XX:
// a lease that expired or is unknown is never re-added, so a renewal cannot resurrect a lease a
// concurrent release removed. Only if some were missing does it look at them one by one.
//
//	KEYS: inflight
//	ARGV: TTL µs, then lease ids (at most maxIDsPerCall)
//	Reply: per lease id, 1 renewed or 0 lost (expired or unknown).
var renewScript = redis.NewScript(`
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1735689600) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[1])
local n = #ARGV - 1
local exp = now + ttl
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local cmd = {'ZADD', KEYS[1], 'XX', 'CH'}
for i = 2, #ARGV do
  cmd[#cmd + 1] = exp
  cmd[#cmd + 1] = ARGV[i]
end
local changed = redis.call(unpack(cmd))
local out = {}
if changed == n then
  for i = 1, n do out[i] = 1 end
else
  -- Some were missing (or already at exp): every live one now scores exactly exp.
  changed = 0
  for i = 2, #ARGV do
    local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
    if s and tonumber(s) == exp then
      out[i - 1] = 1
      changed = changed + 1
    else
      out[i - 1] = 0
    end
  end
end
if changed > 0 then
  local want = math.ceil(ttl / 1000) + 1
  if redis.call('PTTL', KEYS[1]) < want then
    redis.call('PEXPIRE', KEYS[1], want)
  end
end
return out
`)

// releaseScript frees leases of one subject. A script rather than ZREM so the limiter needs only
// redis.Scripter. Reply: how many were removed (the rest were already gone).
//
//	KEYS: inflight
//	ARGV: lease ids (at most maxIDsPerCall)
var releaseScript = redis.NewScript(`return redis.call('ZREM', KEYS[1], unpack(ARGV))`)
