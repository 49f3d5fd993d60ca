// The Lua scripts behind the Redis store: each store call is one script, so
// it is atomic over every line of a request and N gateways see one counter.
//
// Keys (all start with the hash tag `{prefix}`, so they share one Cluster slot):
//
//   {p}m:<line>     hash  s = spent, r = reserved (nano-USD)   expires after its period + grace
//   {p}c:<line>     string request/token count of one window   expires with its window
//   {p}k:<key>      string concurrency slots taken              never expires (holdings return it)
//   {p}instances    zset  instance id → its lease end (Redis server time, ms)
//   {p}h:<id>       hash  lease id → ["m"|"c", amount, [keys]]  what instance <id> holds
//
// Every script that takes or returns a holding first reaps instances whose
// lease ended (their holdings go back to the counters) and renews its own
// instance's lease. Amounts travel as strings: Lua's number formatting turns
// 1e15 into "1e+15", which INCRBY refuses.

/** KEYS[1] instances, KEYS[2] own holdings; ARGV[1] instance id, ARGV[2] lease ttl ms, ARGV[3] prefix. */
const PREAMBLE = `
local function unhold(entry)
  local e = cjson.decode(entry)
  for _, k in ipairs(e[3]) do
    if redis.call('EXISTS', k) == 1 then
      if e[1] == 'm' then redis.call('HINCRBY', k, 'r', '-' .. e[2]) else redis.call('DECRBY', k, e[2]) end
    end
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 16)
for _, id in ipairs(dead) do
  local h = ARGV[3] .. 'h:' .. id
  local all = redis.call('HGETALL', h)
  for i = 2, #all, 2 do unhold(all[i]) end
  redis.call('DEL', h)
  redis.call('ZREM', KEYS[1], id)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
`;

/**
 * Reserve: KEYS[3..] money lines; ARGV[4] lease id, ARGV[5] amount, then per
 * line its cap and its expiry (ms). Returns {-1 | first line without room,
 * spent1, reserved1, …} (values as they are after the call).
 */
export const RESERVE = `${PREAMBLE}
local amount = tonumber(ARGV[5])
local out = {-1}
for i = 3, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 's', 'r')
  local s, r = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  out[#out + 1] = s
  out[#out + 1] = r
  if s + r + amount > tonumber(ARGV[4 + 2 * (i - 2)]) then
    out[1] = i - 3
    return out
  end
end
local keys = {}
for i = 3, #KEYS do
  out[2 * (i - 2) + 1] = redis.call('HINCRBY', KEYS[i], 'r', ARGV[5])
  redis.call('PEXPIREAT', KEYS[i], ARGV[5 + 2 * (i - 2)])
  keys[#keys + 1] = KEYS[i]
end
redis.call('HSET', KEYS[2], ARGV[4], cjson.encode({'m', ARGV[5], keys}))
return out
`;

/**
 * Take: a request's admission in one step, all or nothing. KEYS[3..] are, in
 * order, nc checked window counters, nf forced ones, ns (0 or 1) concurrency
 * counter, then the money lines. ARGV[4] lease id (the slot's is it + 'k'),
 * ARGV[5] amount, ARGV[6..8] nc, nf, ns, ARGV[9] the slot limit, then per
 * checked window its limit and expiry, per forced one its expiry, per money
 * line its cap and expiry. Returns {-1 | what refused (state-store.ts Take),
 * then every counter's value (money as spent, reserved)}: after the call when
 * it took, as found when it refused.
 */
export const TAKE = `${PREAMBLE}
local amount = tonumber(ARGV[5])
local nc, nf, ns = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local out = {-1}
-- Keys that exist already have their expiry: it is set once, when a key is made.
local new = {}
local k, a = 3, 10
for i = 1, nc do
  local v = redis.call('GET', KEYS[k])
  local c = tonumber(v or '0')
  new[k] = not v
  out[#out + 1] = c
  if out[1] == -1 and c + 1 > tonumber(ARGV[a]) then out[1] = i - 1 end
  k, a = k + 1, a + 2
end
for i = 1, nf do
  local v = redis.call('GET', KEYS[k])
  new[k] = not v
  out[#out + 1] = tonumber(v or '0')
  k, a = k + 1, a + 1
end
if ns == 1 then
  local c = tonumber(redis.call('GET', KEYS[k]) or '0')
  out[#out + 1] = c
  if out[1] == -1 and c + 1 > tonumber(ARGV[9]) then out[1] = nc end
  k = k + 1
end
for i = 1, #KEYS - k + 1 do
  local v = redis.call('HMGET', KEYS[k + i - 1], 's', 'r')
  new[k + i - 1] = not v[1] and not v[2]
  local s, r = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  out[#out + 1] = s
  out[#out + 1] = r
  if out[1] == -1 and s + r + amount > tonumber(ARGV[a + 2 * (i - 1)]) then out[1] = nc + i end
end
if out[1] ~= -1 then return out end
k, a = 3, 10
local o = 2
for i = 1, nc do
  out[o] = redis.call('INCR', KEYS[k])
  if new[k] then redis.call('PEXPIREAT', KEYS[k], ARGV[a + 1]) end
  k, a, o = k + 1, a + 2, o + 1
end
for i = 1, nf do
  out[o] = redis.call('INCR', KEYS[k])
  if new[k] then redis.call('PEXPIREAT', KEYS[k], ARGV[a]) end
  k, a, o = k + 1, a + 1, o + 1
end
if ns == 1 then
  out[o] = redis.call('INCR', KEYS[k])
  redis.call('HSET', KEYS[2], ARGV[4] .. 'k', cjson.encode({'c', '1', {KEYS[k]}}))
  k, o = k + 1, o + 1
end
local keys = {}
for i = k, #KEYS do
  out[o + 1] = redis.call('HINCRBY', KEYS[i], 'r', ARGV[5])
  if new[i] then redis.call('PEXPIREAT', KEYS[i], ARGV[a + 1]) end
  keys[#keys + 1] = KEYS[i]
  a, o = a + 2, o + 2
end
if #keys > 0 then redis.call('HSET', KEYS[2], ARGV[4], cjson.encode({'m', ARGV[5], keys})) end
return out
`;

/**
 * Settle, cancel and release: returns lease ARGV[4] (if this instance still
 * holds it: a reaped lease has already returned) and adds ARGV[5] to the
 * spend of the money lines KEYS[3..] that still exist. With ARGV[6] (how many
 * of KEYS are money lines), the rest are counters forced up by ARGV[7] (the
 * response's tokens), each with its expiry from ARGV[8..]. Returns {spent1,
 * reserved1, …, count1, …}.
 */
export const SETTLE = `${PREAMBLE}
local held = redis.call('HGET', KEYS[2], ARGV[4])
if held then
  redis.call('HDEL', KEYS[2], ARGV[4])
  unhold(held)
end
local out = {}
local last = ARGV[6] and 2 + tonumber(ARGV[6]) or #KEYS
for i = 3, last do
  local v = redis.call('HMGET', KEYS[i], 's', 'r')
  local s = tonumber(v[1]) or 0
  -- Spend lands only on a line that exists: an expired period is not brought back.
  if ARGV[5] ~= '0' and (v[1] or v[2]) then s = redis.call('HINCRBY', KEYS[i], 's', ARGV[5]) end
  out[#out + 1] = s
  out[#out + 1] = tonumber(v[2]) or 0
end
for i = last + 1, #KEYS do
  local c = redis.call('INCRBY', KEYS[i], ARGV[7])
  out[#out + 1] = c
  if c == tonumber(ARGV[7]) then redis.call('PEXPIREAT', KEYS[i], ARGV[8 + i - last - 1]) end
end
return out
`;

/** Acquire: KEYS[3] a concurrency counter; ARGV[4] lease id, ARGV[5] limit. Returns {1 taken | 0 full, count}. */
export const ACQUIRE = `${PREAMBLE}
local c = tonumber(redis.call('GET', KEYS[3]) or '0')
if c + 1 > tonumber(ARGV[5]) then return {0, c} end
c = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[2], ARGV[4], cjson.encode({'c', '1', {KEYS[3]}}))
return {1, c}
`;

/**
 * Count: KEYS window counters; ARGV[1] cost, ARGV[2] '1' to force, then per
 * line its limit and expiry. Windows are not leased (a counted request stays
 * counted), so no preamble. Returns {-1 | first line over, count1, …}.
 */
export const COUNT = `
local out = {-1}
for i = 1, #KEYS do
  local c = tonumber(redis.call('GET', KEYS[i]) or '0')
  out[#out + 1] = c
  if ARGV[2] ~= '1' and c + tonumber(ARGV[1]) > tonumber(ARGV[1 + 2 * i]) then
    out[1] = i - 1
    return out
  end
end
for i = 1, #KEYS do
  out[i + 1] = redis.call('INCRBY', KEYS[i], ARGV[1])
  redis.call('PEXPIREAT', KEYS[i], ARGV[2 + 2 * i])
end
return out
`;

// Budget leasing (budget-leases.ts): an instance's slice of a money line is one
// holding, `s:<line>` in its holdings hash, whose amount grows with each grant
// and shrinks with each report; reaping a dead instance returns it as any other.

/**
 * Grant: KEYS[3..] money lines; per line ARGV its cap, expiry, the slice
 * wanted and the least needed (0, 0: read only). Each line grants
 * lease-slice.ts grantOf(headroom, want, need); all or nothing. Returns
 * {-1 | first line without the need, then per line grant, spent, reserved}.
 */
export const GRANT = `${PREAMBLE}
local out = {-1}
local grants = {}
for i = 3, #KEYS do
  local a = 4 + 4 * (i - 3)
  local v = redis.call('HMGET', KEYS[i], 's', 'r')
  local s, r = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  local want, need = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local g = 0
  if want > 0 then
    local headroom = tonumber(ARGV[a]) - s - r
    if headroom >= want then g = want elseif headroom >= need then g = need end
    if g == 0 and out[1] == -1 then out[1] = i - 3 end
  end
  grants[i] = g
  out[#out + 1] = g
  out[#out + 1] = s
  out[#out + 1] = r
end
if out[1] ~= -1 then
  for i = 3, #KEYS do out[3 * (i - 3) + 2] = 0 end
  return out
end
for i = 3, #KEYS do
  local g = grants[i]
  if g > 0 then
    local a = 4 + 4 * (i - 3)
    out[3 * (i - 3) + 4] = redis.call('HINCRBY', KEYS[i], 'r', string.format('%d', g))
    redis.call('PEXPIREAT', KEYS[i], ARGV[a + 1])
    local f = 's:' .. KEYS[i]
    local e = redis.call('HGET', KEYS[2], f)
    local held = e and tonumber(cjson.decode(e)[2]) or 0
    redis.call('HSET', KEYS[2], f, cjson.encode({'m', string.format('%d', held + g), {KEYS[i]}}))
  end
end
return out
`;

/**
 * Report: KEYS[3..] money lines; per line ARGV its spend, the free slice
 * given back, and what this instance believes it still holds after that (-1:
 * unsure, a grant is on its way). Spend is added to lines that exist; the
 * slice drops by spend + given back (to what the instance believes, when it
 * knows: a grant whose answer was lost comes back this way), and reserved with
 * it. Returns per line {what it held before, spent, reserved}: held below
 * spend + given back means its lease lapsed meanwhile.
 */
export const REPORT = `${PREAMBLE}
local out = {}
for i = 3, #KEYS do
  local a = 4 + 3 * (i - 3)
  local spend, give, keep = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local f = 's:' .. KEYS[i]
  local e = redis.call('HGET', KEYS[2], f)
  local held = e and tonumber(cjson.decode(e)[2]) or 0
  local left = math.max(0, held - spend - give)
  if keep >= 0 then left = math.min(left, keep) end
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if spend > 0 then redis.call('HINCRBY', KEYS[i], 's', ARGV[a]) end
    if held > left then redis.call('HINCRBY', KEYS[i], 'r', '-' .. string.format('%d', held - left)) end
  end
  if left > 0 then
    redis.call('HSET', KEYS[2], f, cjson.encode({'m', string.format('%d', left), {KEYS[i]}}))
  elseif e then
    redis.call('HDEL', KEYS[2], f)
  end
  local v = redis.call('HMGET', KEYS[i], 's', 'r')
  out[#out + 1] = held
  out[#out + 1] = tonumber(v[1]) or 0
  out[#out + 1] = tonumber(v[2]) or 0
end
return out
`;

/** Renew this instance's lease (and reap others'). Returns how many instances hold a lease. */
export const RENEW = `${PREAMBLE}
return redis.call('ZCARD', KEYS[1])
`;

/** Read: KEYS[1..ARGV[1]] money lines, the rest counters. Returns {spent, reserved, …, count, …}. */
export const READ = `
local out = {}
local n = tonumber(ARGV[1])
for i = 1, #KEYS do
  if i <= n then
    local v = redis.call('HMGET', KEYS[i], 's', 'r')
    out[#out + 1] = tonumber(v[1]) or 0
    out[#out + 1] = tonumber(v[2]) or 0
  else
    out[#out + 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
end
return out
`;

/**
 * Import an embedded store's snapshot, once: KEYS[1] the marker, then
 * ARGV[1] money lines' count n, KEYS[2..n+1] money lines, the rest counters;
 * ARGV[2] the snapshot's digest, then per key its value and its expiry.
 * Returns 0 (and changes nothing) when a snapshot was imported before.
 */
export const IMPORT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = tonumber(ARGV[1])
for i = 2, #KEYS do
  local v, exp = ARGV[1 + 2 * (i - 1)], ARGV[2 + 2 * (i - 1)]
  if i <= n + 1 then redis.call('HINCRBY', KEYS[i], 's', v) else redis.call('INCRBY', KEYS[i], v) end
  redis.call('PEXPIREAT', KEYS[i], exp)
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`;
