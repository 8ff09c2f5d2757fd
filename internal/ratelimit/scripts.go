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

// luaNow reads Redis's clock into now: microseconds since 2025-01-01.
const luaNow = `
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1735689600) * 1000000 + tonumber(t[2])
`

// luaAddLeases defines add_leases(key, adds, maxttl): it adds adds (score, member pairs) to the
// lease set key, in commands of at most 500 leases (Lua's unpack has a stack limit), and keeps
// the set alive at least maxttl µs.
const luaAddLeases = `
local function add_leases(key, adds, maxttl)
  for i = 1, #adds, 1000 do
    redis.call('ZADD', key, unpack(adds, i, math.min(i + 999, #adds)))
  end
  local want = math.ceil(maxttl / 1000) + 1
  if redis.call('PTTL', key) < want then
    redis.call('PEXPIRE', key, want)
  end
end
`

// luaGCRA defines gcra(tat, now, period, count, burst, cost): whether cost fits a bucket whose
// theoretical arrival time is tat (0: never charged; all in µs on Redis's clock), redis_rate's
// arithmetic. It returns fits, the TAT after the charge, remaining and reset µs (after the charge
// if it fits, else as they are), remaining and reset µs before the charge, and retry µs (the
// time until cost would fit; 0 if it fits).
const luaGCRA = `
local function gcra(tat, now, period, count, burst, cost)
  local em = period / count
  local boff = em * burst
  local tol = math.min(1, em / 4)
  if tat < now then tat = now end
  local nt = tat + em * cost
  local rem0 = math.max(math.floor((boff - (tat - now) + tol) / em), 0)
  local reset0 = math.ceil(tat - now)
  if nt - now <= boff + tol then
    return true, nt, math.floor((boff - (nt - now) + tol) / em), math.ceil(nt - now), rem0, reset0, 0
  end
  return false, nt, rem0, reset0, rem0, reset0, math.ceil(nt - now - boff)
end
`

// admitScript checks and charges one subject for a batch of admissions, in order: each is
// decided exactly as if it were sent alone right after the ones before it (same GCRA arithmetic,
// same lease counting), all on one reading of Redis's clock. A batch of one is the plain admit.
// The state the admissions leave (TATs, new leases) is kept in Lua and written once at the end,
// so a batch of n costs one GET/SET per dimension and one ZADD, not n of each.
//
//	KEYS: rpm, ipm, mppm (TAT strings), inflight (sorted set: lease id → expiry µs)
//	ARGV: n (admissions), f (lease ids to remove first: the caller's releases of this subject
//	      that Redis has not confirmed yet; removing one twice, or one that expired, is
//	      harmless), the f lease ids, then per admission 15 values: for each of the 3 rate
//	      dimensions period µs (0 = unlimited), count, burst, cost; then concurrency limit
//	      (0 = unlimited), lease TTL µs, lease id.
//	Reply: per admission 16 values: allowed, then per rate dimension: refused, remaining,
//	       reset µs, retry µs; then concurrency refused, remaining, and when refused the µs
//	       until the earliest lease expires (its Retry-After).
var admitScript = redis.NewScript(luaNow + luaGCRA + luaAddLeases + `
local n = tonumber(ARGV[1])
local nfree = tonumber(ARGV[2])
for i = 3, 2 + nfree, 1000 do
  redis.call('ZREM', KEYS[4], unpack(ARGV, i, math.min(i + 999, 2 + nfree)))
end
-- The subject's state as the admissions so far left it, read when first needed.
local tats = {}            -- per dimension: TAT (false: not read yet)
local dirty = {}           -- per dimension: charged by this batch
local used                 -- live leases, counting those this batch added (nil: not counted yet)
local oldest               -- earliest expiry among the leases before the batch (nil: not read)
local newest               -- earliest expiry among the leases this batch added
local adds = {}
local maxttl = 0
local out = {}
for r = 0, n - 1 do
  local a = 2 + nfree + r * 15
  local ok = 1
  local qs = {}
  local newtat = {}
  for i = 1, 3 do
    local b = a + (i - 1) * 4
    local period = tonumber(ARGV[b + 1])
    -- refused, remaining, reset, retry; remaining and reset are after the charge if it fits
    local q = {0, 0, 0, 0}
    if period > 0 then
      local cost = tonumber(ARGV[b + 4])
      if not tats[i] then tats[i] = tonumber(redis.call('GET', KEYS[i]) or 0) end
      local fits, nt, rem, reset, rem0, reset0, retry =
        gcra(tats[i], now, period, tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), cost)
      if fits then
        q = {0, rem, reset, 0, rem0, reset0}
        if cost > 0 then newtat[i] = nt end
      else
        ok = 0
        q = {1, rem, reset, retry}
      end
    end
    qs[i] = q
  end
  local climit = tonumber(ARGV[a + 13])
  local crefused, cremaining, cretry = 0, 0, 0
  if climit > 0 then
    if not used then
      redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
      used = redis.call('ZCARD', KEYS[4])
    end
    if used < climit then
      cremaining = climit - used - 1
    else
      ok = 0
      crefused = 1
      if oldest == nil then
        local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
        oldest = first[2] and tonumber(first[2]) or false
      end
      local e = oldest
      if newest and (not e or newest < e) then e = newest end
      if e then cretry = math.ceil(e - now) end
    end
  end
  -- Flatten; a refusal charges nothing, so dimensions that fit report their uncharged state.
  out[#out + 1] = ok
  for i = 1, 3 do
    local q = qs[i]
    if ok == 0 and q[1] == 0 and q[5] then
      q[2], q[3] = q[5], q[6]
    end
    for j = 1, 4 do out[#out + 1] = q[j] end
  end
  out[#out + 1] = crefused
  out[#out + 1] = cremaining
  out[#out + 1] = cretry
  if ok == 1 then
    for i = 1, 3 do
      if newtat[i] then
        tats[i] = newtat[i]
        dirty[i] = true
      end
    end
    if climit > 0 then
      local ttl = tonumber(ARGV[a + 14])
      adds[#adds + 1] = now + ttl
      adds[#adds + 1] = ARGV[a + 15]
      used = used + 1
      if not newest or now + ttl < newest then newest = now + ttl end
      if ttl > maxttl then maxttl = ttl end
    end
  end
end
for i = 1, 3 do
  if dirty[i] then
    redis.call('SET', KEYS[i], tats[i], 'PX', math.ceil((tats[i] - now) / 1000) + 1)
  end
end
if #adds > 0 then add_leases(KEYS[4], adds, maxttl) end
return out
`)

// giveBackScript refunds units to one subject's rate dimensions, never past a full bucket.
//
//	KEYS: rpm, ipm, mppm
//	ARGV: for each rate dimension: period µs (0 = skip), count, units to give back
var giveBackScript = redis.NewScript(luaNow + `
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
var renewScript = redis.NewScript(luaNow + `
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

// allotScript charges one subject for an allotment (see allot.go): units of each limited rate
// dimension, all or none, and, only if those fit, as many concurrency leases (members of the
// inflight set) as fit under the limit, up to the number given. It removes the caller's
// unconfirmed releases first, as admitScript does.
//
//	KEYS: rpm, ipm, mppm, inflight
//	ARGV: f, the f lease ids to remove first; per rate dimension period µs (0 = unlimited),
//	      count, burst, units wanted; concurrency limit (0 = unlimited), lease TTL µs; then the
//	      ids of the leases wanted.
//	Reply: rate units granted (1 or 0); per rate dimension remaining (after the charge if
//	       granted), reset µs, retry µs (if refused); leases granted; concurrency remaining
//	       after them.
var allotScript = redis.NewScript(luaNow + luaGCRA + luaAddLeases + `
local nfree = tonumber(ARGV[1])
for i = 2, 1 + nfree, 1000 do
  redis.call('ZREM', KEYS[4], unpack(ARGV, i, math.min(i + 999, 1 + nfree)))
end
local a = 1 + nfree
local ok = 1
local qs = {}
local newtat = {}
for i = 1, 3 do
  local b = a + (i - 1) * 4
  local period = tonumber(ARGV[b + 1])
  local q = {0, 0, 0}
  if period > 0 then
    local want = tonumber(ARGV[b + 4])
    local fits, nt, rem, reset, _, _, retry = gcra(tonumber(redis.call('GET', KEYS[i]) or 0), now, period,
      tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), want)
    q = {rem, reset, retry}
    if not fits then
      ok = 0
    elseif want > 0 then
      newtat[i] = nt
    end
  end
  qs[i] = q
end
local out = {ok}
for i = 1, 3 do
  if ok == 1 and newtat[i] then
    redis.call('SET', KEYS[i], newtat[i], 'PX', math.ceil((newtat[i] - now) / 1000) + 1)
  end
  for j = 1, 3 do out[#out + 1] = qs[i][j] end
end
local c = a + 12
local climit = tonumber(ARGV[c + 1])
local ttl = tonumber(ARGV[c + 2])
local granted, cremaining = 0, 0
if climit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  local used = redis.call('ZCARD', KEYS[4])
  if ok == 1 then
    granted = math.max(0, math.min(#ARGV - c - 2, climit - used))
  end
  if granted > 0 then
    local adds = {}
    for j = 1, granted do
      adds[#adds + 1] = now + ttl
      adds[#adds + 1] = ARGV[c + 2 + j]
    end
    add_leases(KEYS[4], adds, ttl)
  end
  cremaining = math.max(climit - used - granted, 0)
end
out[#out + 1] = granted
out[#out + 1] = cremaining
return out
`)
