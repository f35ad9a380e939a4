package redisstore

import (
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/guardhq/guard/session"
)

// The Lua scripts. Each runs atomically in Redis: no other command runs
// between its reads and its writes, on any client, which is how every
// invariant holds across replicas.
//
// Keys (P is the store's prefix; see keys.go):
//
//	P s: <hex hash>                       a session: a hash with the fields below
//	P u: <len(tenant)>:<tenant>:<user>    a user's sessions: a sorted set of
//	                                      hex hashes scored by CreatedAt
//	P se: <hex hash>                      the tombstone of an evicted session:
//	                                      a string, its end (microseconds),
//	                                      expiring just after it; of a
//	                                      rotated one: "<end>,<hex hash of
//	                                      its successor>,<len(tenant)>:
//	                                      <tenant>:<user>" (see rotatedTomb)
//	P ue: <len(tenant)>:<tenant>:<user>   a user's tombstones: a sorted set of
//	                                      hex hashes scored by their end
//	P t: <key>                            a throttle record: a hash
//	P mc: <len(tenant)>:<tenant>:<txn>    a one-time MFA code: a hash
//	P mr: <key>                           an MFA rate counter: a hash
//	P mt: <hex hash>                      a pending MFA login: a hash
//	P sr: <len(tenant)>:<tenant>:<id>     a tracked SAML request: a hash
//	P sa: <len(tenant)>:<tenant>:<id>     a SAML replay record: a string
//	P su: <len(tenant)>:<tenant>:<user>   a user's SAML subject: a hash
//	P sn: <len(tenant)>:<tenant>:<nameID> the users of a NameID: a sorted set
//	                                      of user IDs scored by Expires
//
// Session fields: t tenant, u user ID, c CreatedAt, l LastSeen, e
// ExpiresAt (microseconds since 1970), i IdleTimeout (nanoseconds, for the
// round trip), ic IdleTimeout and ih IdleTimeout/2 (microseconds, rounded
// up, for the liveness and touch rules), ip, ua, f Flags.
//
// Throttle fields: f failures (below zero during a lock, see
// auth.Record), l last counted attempt not given back ("" for the zero
// time), lu end of the current or last temporary lock ("" if none), n
// lockouts, p permanent ("1" or "0").
//
// Code fields (mfa.Code): u UserID, f FactorID, k Kind, h Hash (hex), c
// CreatedAt, e ExpiresAt (microseconds), n TriesLeft.
//
// Rate fields: n the count of the current window, e its end
// (microseconds).
//
// Transaction fields (mfa.Transaction): t tenant, u user ID, b Binding
// (hex), p Purpose, f Flags, c CreatedAt, e ExpiresAt (microseconds).
//
// SAML request fields (sso.Request): k Kind, r RelayState, p ReturnTo, b
// Binding, c CreatedAt ("" for the zero time), e Expires (microseconds).
// A SAML replay record holds its until (microseconds).
//
// SAML subject fields (sso.Subject): n NameID, f NameIDFormat, i
// SessionIndex, e Expires (microseconds).
//
// Lua numbers are float64: the times and durations compared are below
// 2^53 (Go checks), and every number written back to Redis is either an
// argument passed through as a string or formatted with %.0f, never with
// Lua's default %.14g.

// sessionFieldNames are the fields of a session that Go decodes, in order;
// sessionFields is the same list in Lua.
var (
	sessionFieldNames = []string{"t", "u", "c", "l", "e", "i", "ip", "ua", "f"}
	sessionFields     = "'" + strings.Join(sessionFieldNames, "', '") + "'"
)

// luaCommon is prepended to the session scripts that work with the user
// index; ARGV[1] is the key prefix.
var luaCommon = `
local P = ARGV[1]
local function num(n) return string.format('%.0f', n) end
local function skey(m) return P .. 's:' .. m end
local function ukey(t, u) return P .. 'u:' .. #t .. ':' .. t .. ':' .. u end
local function xkey(m) return P .. 'se:' .. m end
-- get returns the fields of session m, then m; v[1] is false if m is gone.
local function get(m)
  local v = redis.call('HMGET', skey(m), ` + sessionFields + `)
  v[10] = m
  return v
end
-- live reports whether session key k is live at t: nil if k is gone.
local function live(k, t)
  local v = redis.call('HMGET', k, 'l', 'e', 'ic')
  if not v[1] then return nil end
  return t < tonumber(v[2]) and t - tonumber(v[1]) < tonumber(v[3])
end
-- fix drops from index idx the members whose session is gone and makes
-- idx expire with its last session.
local function fix(idx)
  local last = nil
  for _, m in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
    local e = redis.call('HGET', skey(m), 'e')
    if not e then
      redis.call('ZREM', idx, m)
    elseif not last or tonumber(e) > last then
      last = tonumber(e)
    end
  end
  if last then redis.call('PEXPIREAT', idx, num(math.floor(last / 1000) + 1)) end
end
`

// createScript: KEYS[1] the new session, KEYS[2] its user's index,
// KEYS[3] the user's tombstones. ARGV: prefix, hex hash, CreatedAt,
// lim.Max, "1" for RefuseNew, PEXPIREAT of the session, then the session's
// field/value pairs. Returns {1} for a duplicate (a session or a
// tombstone), {2} for the limit, else {0, evicted sessions...}. Each
// evicted session leaves a tombstone until its end, min(e, l + ic); the
// user's tombstones that ended at CreatedAt are deleted.
var createScript = redis.NewScript(luaCommon + `
if redis.call('EXISTS', KEYS[1], xkey(ARGV[2])) > 0 then return {1} end
local now, max = tonumber(ARGV[3]), tonumber(ARGV[4])
local alive, dead = {}, {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if live(skey(m), now) then alive[#alive + 1] = m else dead[#dead + 1] = m end
end
local cut = 0
if max > 0 and #alive >= max then
  if ARGV[5] == '1' then return {2} end
  cut = #alive - max + 1
end
local out = {0}
for _, m in ipairs(dead) do
  redis.call('DEL', skey(m))
  redis.call('ZREM', KEYS[2], m)
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[3])) do
  redis.call('DEL', xkey(m))
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[3])
for i = 1, cut do
  local m = alive[i]
  local v = get(m)
  out[#out + 1] = v
  local f = redis.call('HMGET', skey(m), 'ic')
  local ends = num(math.min(tonumber(v[5]), tonumber(v[4]) + tonumber(f[1])))
  redis.call('SET', xkey(m), ends)
  redis.call('PEXPIREAT', xkey(m), num(math.floor(tonumber(ends) / 1000) + 1))
  redis.call('ZADD', KEYS[3], ends, m)
  redis.call('DEL', skey(m))
  redis.call('ZREM', KEYS[2], m)
end
if cut > 0 then
  local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[3], num(math.floor(tonumber(last[2]) / 1000) + 1))
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
fix(KEYS[2])
return out
`)

// touchScript: KEYS[1] the session; ARGV[1] the time seen. Returns 0 if
// the session is absent, else 1; sets LastSeen only if seen is later.
var touchScript = redis.NewScript(`
local l = redis.call('HGET', KEYS[1], 'l')
if not l then return 0 end
if tonumber(ARGV[1]) > tonumber(l) then redis.call('HSET', KEYS[1], 'l', ARGV[1]) end
return 1
`)

// untouchScript: KEYS[1] the session; ARGV the touch to take back and
// the LastSeen to put back (microseconds). Sets LastSeen to ARGV[2] only
// while it is ARGV[1] (compare and set); a missing session (or a
// tombstone, another key) is left alone.
var untouchScript = redis.NewScript(`
local l = redis.call('HGET', KEYS[1], 'l')
if l and tonumber(l) == tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'l', ARGV[2]) end
return 0
`)

// lookupTouchScript: KEYS[1] the session; ARGV now, the touch interval
// and the bound on the gap, maxGap, 0 for none (microseconds, rounded
// up). Returns the session's fields as stored before the touch, else the
// end of its tombstone (a string), or nil if neither exists. The
// tombstone's key is made from KEYS[1] (the same prefix and hash, 'se:'
// for 's:') only when there is no session, so that the per-request call
// costs Go no more than it did without tombstones. It sets LastSeen to
// now when the session is live at now, LastSeen is at least
// min(interval, IdleTimeout/2) before now and, if maxGap > 0, less than
// maxGap before now.
var lookupTouchScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], ` + sessionFields + `, 'ic', 'ih')
if not v[1] then
  local k = KEYS[1]
  return redis.call('GET', string.sub(k, 1, -67) .. 'se:' .. string.sub(k, -64))
end
local now, l, gap = tonumber(ARGV[1]), tonumber(v[4]), tonumber(ARGV[3])
if now > l and now < tonumber(v[5]) and now - l < tonumber(v[10])
    and now - l >= math.min(tonumber(ARGV[2]), tonumber(v[11]))
    and (gap <= 0 or now - l < gap) then
  redis.call('HSET', KEYS[1], 'l', ARGV[1])
end
v[11] = nil
v[10] = nil
return v
`)

// luaDrop follows luaCommon in the scripts that delete a session as
// Delete does (deleteScript, deleteLineageScript).
var luaDrop = `
-- drop deletes session m, whose fields get returned as v, and takes it
-- out of its user's index.
local function drop(m, v)
  redis.call('DEL', skey(m))
  local idx = ukey(v[1], v[2])
  redis.call('ZREM', idx, m)
  fix(idx)
end
`

// deleteScript: KEYS[1] the session; ARGV prefix, hex hash. Returns the
// deleted session or nil.
var deleteScript = redis.NewScript(luaCommon + luaDrop + `
local v = get(ARGV[2])
if not v[1] then return false end
drop(ARGV[2], v)
return v
`)

// deleteLineageScript: KEYS[1] the session of the hash given; ARGV prefix,
// its hex hash, the most rotation tombstones to follow (maxHops, not
// negative). It follows the successors of rotated sessions' tombstones
// ("<end>,<successor>,<len(tenant)>:<tenant>:<user>", see rotatedTomb),
// each of the user of the first, to a session, and deletes it as
// deleteScript does. Returns {0, 1 if a tombstone was followed else 0,
// the session's fields, its hex hash}; {1}, and deletes nothing, for an
// unknown hash, an evicted session's tombstone, a chain longer than
// maxHops, ending in nothing or in such a tombstone, or changing tenant
// or user (the session at its end included); {9}, and deletes nothing,
// for a tombstone this package did not write.
var deleteLineageScript = redis.NewScript(luaCommon + luaDrop + `
-- tomb returns the successor and the user named by the tombstone of m:
-- nil if m has none, '' for an evicted session's, false if it is malformed.
local function tomb(m)
  local v = redis.call('GET', xkey(m))
  if not v then return nil end
  if string.match(v, '^%d+$') then return '' end
  local succ, user = string.match(v, '^%d+,(` + strings.Repeat("%x", 2*len(session.Hash{})) + `),(.*)$')
  if not succ then return false end
  local n, rest = string.match(user, '^(%d+):(.*)$')
  if not n or tonumber(n) >= #rest or string.sub(rest, n + 1, n + 1) ~= ':' then return false end
  return string.lower(succ), user
end
local m, max, user = ARGV[2], tonumber(ARGV[3]), nil
for hops = 0, max do
  local v = get(m)
  if v[1] then
    if user and #v[1] .. ':' .. v[1] .. ':' .. v[2] ~= user then return {1} end
    drop(m, v)
    return {0, hops > 0 and 1 or 0, unpack(v)}
  end
  local succ, u = tomb(m)
  if succ == false then return {9} end
  if not succ or succ == '' or (user and u ~= user) then return {1} end
  m, user = succ, u
end
-- The chain is longer than maxHops.
return {1}
`)

// rotateScript: KEYS[1] the old session, KEYS[2] the new one, KEYS[3] the
// new one's user index. ARGV prefix, old hex hash, new hex hash, new
// CreatedAt, PEXPIREAT of the new session, its ExpiresAt (microseconds),
// then its field/value pairs. Returns 1 if the old session is absent, 2
// if the new hash exists (as a session or a tombstone), else 0. The old
// session leaves a tombstone until the new one's ExpiresAt, in its user's
// tombstones, naming the new one (see rotatedTomb).
var rotateScript = redis.NewScript(luaCommon + `
local v = redis.call('HMGET', KEYS[1], 't', 'u')
if not v[1] then return 1 end
if redis.call('EXISTS', KEYS[2], xkey(ARGV[3])) > 0 then return 2 end
redis.call('DEL', KEYS[1])
local old = ukey(v[1], v[2])
redis.call('ZREM', old, ARGV[2])
local tk, tidx = xkey(ARGV[2]), P .. 'ue:' .. #v[1] .. ':' .. v[1] .. ':' .. v[2]
redis.call('SET', tk, ARGV[6] .. ',' .. ARGV[3] .. ',' .. #v[1] .. ':' .. v[1] .. ':' .. v[2])
redis.call('PEXPIREAT', tk, num(math.floor(tonumber(ARGV[6]) / 1000) + 1))
redis.call('ZADD', tidx, ARGV[6], ARGV[2])
local last = redis.call('ZRANGE', tidx, -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', tidx, num(math.floor(tonumber(last[2]) / 1000) + 1))
redis.call('HSET', KEYS[2], unpack(ARGV, 7))
redis.call('PEXPIREAT', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
if old ~= KEYS[3] then fix(old) end
fix(KEYS[3])
return 0
`)

// listScript: KEYS[1] a user index; ARGV prefix. Returns the user's
// sessions oldest first (by CreatedAt, then hash), dropping from the index
// the members whose session has expired.
var listScript = redis.NewScript(luaCommon + `
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local v = get(m)
  if v[1] then out[#out + 1] = v else redis.call('ZREM', KEYS[1], m) end
end
return out
`)

// deleteByUserScript: KEYS[1] a user index, KEYS[2] the user's
// tombstones; ARGV prefix, the hex hash to spare ("" spares none), the
// most rotations to follow back from it (session.MaxLineageHops).
// Returns the deleted sessions; deletes every tombstone of the user but,
// when the hash spared is a session of the user, the rotation tombstones
// that lead to it (whose successor is it or another kept one, at most
// ARGV[3] rotations back), and makes the user's set of tombstones expire
// with the last kept.
var deleteByUserScript = redis.NewScript(luaCommon + `
local out, spared = {}, false
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if m ~= ARGV[2] then
    local v = get(m)
    if v[1] then
      out[#out + 1] = v
      redis.call('DEL', skey(m))
    end
    redis.call('ZREM', KEYS[1], m)
  elseif redis.call('EXISTS', skey(m)) == 1 then
    spared = true
  end
end
local tombs = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local keep = {}
if spared then
  -- The successor of each rotation tombstone ("<end>,<successor>,<user>").
  local succ = {}
  for i = 1, #tombs, 2 do
    local v = redis.call('GET', xkey(tombs[i]))
    if v then succ[tombs[i]] = string.match(v, '^[^,]*,([^,]*),') end
  end
  local front = {[ARGV[2]] = true}
  for _ = 1, tonumber(ARGV[3]) do
    local nxt, found = {}, false
    for i = 1, #tombs, 2 do
      local m = tombs[i]
      if not keep[m] and succ[m] and front[succ[m]] then
        keep[m], nxt[m], found = true, true, true
      end
    end
    if not found then break end
    front = nxt
  end
end
local last = nil
for i = 1, #tombs, 2 do
  local m = tombs[i]
  if keep[m] then
    last = tonumber(tombs[i + 1])
  else
    redis.call('DEL', xkey(m))
    redis.call('ZREM', KEYS[2], m)
  end
end
if last then
  redis.call('PEXPIREAT', KEYS[2], num(math.floor(last / 1000) + 1))
else
  redis.call('DEL', KEYS[2])
end
return out
`)

// reserveScript is auth.BatchThrottleStore.ReserveAll: auth.Limit.Apply
// on each throttle record of KEYS in order, up to the first that is
// refused, judged at the now given from the record's fields, never by
// the key's expiry: a record's key expires ClockGrace after
// auth.Record.ExpiresAt (the later of l + ResetAfter and lu), by the
// Redis clock, only to free it. ARGV: now truncated to the microsecond
// (compared with the stored times, which is exact), now rounded up (the
// time an attempt and a lock are counted from, so that neither ends
// early), then for each key
// its lim.Max, lim.ResetAfter (microseconds, rounded up),
// lim.PermanentAfter, the number m of lock lengths that follow, and the
// length of lock number 1, 2, … m, the first that reaches lim.MaxLockFor
// being number m (microseconds, rounded up).
// Returns one {allowed, failures, locks, lockedUntil ("" if none),
// permanent, lockouts, last, prevLast} per key up to the first refused
// one, with 0/1 for the booleans; last is the record's l after an allowed
// reservation and prevLast its l before ("" if none), for a give-back
// (settleScript). A record's l may be "" (a give-back restored the zero
// time): it is then forgotten unless locked, as Record.Expired has it.
var reserveScript = redis.NewScript(`
local function num(n) return string.format('%.0f', n) end
local grace = ` + strconv.FormatInt(ClockGrace.Microseconds(), 10) + `
local function reserve(k, now, atArg, max, reset, perm, locks)
  local at = tonumber(atArg)
  local f, last, lu, n, p = 0, nil, '', 0, false
  local v = redis.call('HMGET', k, 'f', 'l', 'lu', 'n', 'p')
  local prev = v[2] or ''
  if v[2] then
    f, last, lu, n, p = tonumber(v[1]), tonumber(v[2]), v[3] or '', tonumber(v[4]), v[5] == '1'
    -- Record.Expired: forgotten, start again from zero.
    if not p and (last == nil or now - last >= reset) and (lu == '' or now >= tonumber(lu)) then
      f, last, lu, n = 0, nil, '', 0
    end
  end
  if p then return {0, 0, 0, '', 1, n, '', ''} end
  if lu ~= '' and now < tonumber(lu) then return {0, 0, 0, lu, 0, n, '', ''} end
  -- Failures below zero (give-backs during a lock) count as zero.
  if f < 0 then f = 0 end
  f = f + 1
  local res = {1, f, 0, '', 0, 0, atArg, prev}
  if f >= max then
    f = 0
    n = n + 1
    if perm > 0 and n > perm then
      p = true
      lu = ''
      res[5] = 1
    else
      lu = num(at + tonumber(locks[math.min(n, #locks)]))
      res[4] = lu
    end
    res[3] = 1
  end
  res[6] = n
  redis.call('HSET', k, 'f', num(f), 'l', atArg, 'lu', lu, 'n', num(n), 'p', p and '1' or '0')
  if p then
    redis.call('PERSIST', k)
  else
    local until_ = at + reset
    if lu ~= '' and tonumber(lu) > until_ then until_ = tonumber(lu) end
    redis.call('PEXPIREAT', k, num(math.floor((until_ + grace) / 1000) + 1))
  end
  return res
end
local out, a = {}, 3
for i, k in ipairs(KEYS) do
  local m = tonumber(ARGV[a + 3])
  local r = reserve(k, tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]),
    {unpack(ARGV, a + 4, a + 3 + m)})
  out[i] = r
  if r[1] == 0 then break end
  a = a + 4 + m
end
return out
`)

// settleScript is auth.BatchThrottleStore.Settle: for each throttle record
// of KEYS in order, 9 ARGV: "1" to delete it (Reset) or "0" to give back
// the reservation the other 8 describe (Release: auth.Record.GiveBack; an
// absent record stays absent, and its expiry stays as the last Reserve
// set it, or none for a permanent lock lifted). The reservation: allowed
// (0/1), failures, locks (0/1), lockouts, lockedUntil, permanent (0/1),
// last and prevLast, times in microseconds ("" for the zero time).
var settleScript = redis.NewScript(`
local function num(n) return string.format('%.0f', n) end
-- same reports whether two times ("" or microseconds) are equal.
local function same(a, b)
  if a == '' or b == '' then return a == b end
  return tonumber(a) == tonumber(b)
end
-- notAfter reports whether time a is not after time b ("" is the zero time).
local function notAfter(a, b)
  if a == '' then return true end
  if b == '' then return false end
  return tonumber(a) <= tonumber(b)
end
local function giveBack(k, a)
  if ARGV[a + 1] ~= '1' then return end
  local v = redis.call('HMGET', k, 'f', 'l', 'lu', 'n', 'p')
  if not v[2] then return end
  local f, l, lu, n, p = tonumber(v[1]), v[2], v[3] or '', tonumber(v[4]), v[5] == '1'
  local rf, rlocks, rn = tonumber(ARGV[a + 2]), ARGV[a + 3] == '1', tonumber(ARGV[a + 4])
  local rlu, rp, rl, rprev = ARGV[a + 5], ARGV[a + 6] == '1', ARGV[a + 7], ARGV[a + 8]
  if rlocks then
    -- Only the lock this reservation started, with nothing counted since.
    if n ~= rn or p ~= rp or not same(lu, rlu) or not same(l, rl) or f > 0 then return end
    f = math.max(f + rf - 1, 0)
    n = n - 1
    p = false
    lu = ''
    if notAfter(rprev, l) then l = rprev end
  elseif n == rn then
    if f == rf and same(l, rl) and notAfter(rprev, l) then l = rprev end
    f = math.max(f - 1, 0)
  elseif n == rn + 1 and f <= 0 then
    f = f - 1
  else
    return
  end
  redis.call('HSET', k, 'f', num(f), 'l', l, 'lu', lu, 'n', num(n), 'p', p and '1' or '0')
end
for i, k in ipairs(KEYS) do
  local a = 9 * (i - 1) + 1
  if ARGV[a] == '1' then
    redis.call('DEL', k)
  else
    giveBack(k, a)
  end
end
return 0
`)

// codeFieldNames are the fields of a one-time code that Go decodes, in
// order; codeFields is the same list in Lua.
var (
	codeFieldNames = []string{"u", "f", "k", "h", "c", "e", "n"}
	codeFields     = "'" + strings.Join(codeFieldNames, "', '") + "'"
)

// putCodeScript is mfa.CodeStore.PutCode. KEYS[1] the code. ARGV: its
// PEXPIREAT, then its field/value pairs. Whatever the key held is
// replaced: a new code voids the old, in any state.
var putCodeScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 0
`)

// checkCodeScript is mfa.Code.Attempt. KEYS[1] the code. ARGV: now, the
// hash presented (hex). Returns {1} if there is no code, {9} if it is
// malformed, else {status, the code's fields as they were before the
// attempt}, with status 0 right (the code is removed), 2 expired
// (removed), 3 no tries left (kept as it is), 4 wrong (one try used).
// The hashes are compared as strings, not in constant time: they are
// HMACs under a key that only Guard holds, so the time taken tells a
// guesser nothing about the code.
var checkCodeScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], ` + codeFields + `)
if not v[1] then return {1} end
local e, n = tonumber(v[6]), tonumber(v[7])
if not e or not n or not v[4] or #v[4] ~= 64 then return {9} end
local status = 0
if tonumber(ARGV[1]) >= e then
  status = 2
elseif n <= 0 then
  status = 3
elseif v[4] ~= ARGV[2] then
  status = 4
end
if status == 0 or status == 2 then
  redis.call('DEL', KEYS[1])
elseif status == 4 then
  redis.call('HINCRBY', KEYS[1], 'n', -1)
end
table.insert(v, 1, status)
return v
`)

// hitScript is mfa.RateStore.Hit. KEYS[1] the rate counter. ARGV: now,
// the end of a window opening now, and the PEXPIREAT of its key
// (ClockGrace after that end). The window is judged at now from its end
// e, never by the key's expiry: at or after e a new window opens at 1.
// Returns the count of the current window, this event included, or -1
// for a malformed record.
var hitScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'n', 'e')
if v[1] then
  local e = tonumber(v[2])
  if not e or not tonumber(v[1]) then return -1 end
  if tonumber(ARGV[1]) < e then return redis.call('HINCRBY', KEYS[1], 'n', 1) end
end
redis.call('HSET', KEYS[1], 'n', '1', 'e', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
`)

// forgetScript is mfa.RateStore.Forget. KEYS[1] the rate counter. ARGV:
// the end of the window to forget. Deletes the counter if its window
// ends there; returns 1 if it did, else 0.
var forgetScript = redis.NewScript(`
local e = redis.call('HGET', KEYS[1], 'e')
if e and tonumber(e) == tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// txnFieldNames are the fields of a transaction that Go decodes, in
// order; txnFields is the same list in Lua.
var (
	txnFieldNames = []string{"t", "u", "b", "p", "f", "c", "e"}
	txnFields     = "'" + strings.Join(txnFieldNames, "', '") + "'"
)

// createTxnScript is mfa.TransactionStore.CreateTransaction. KEYS[1] the
// transaction. ARGV: its PEXPIREAT, then its field/value pairs. Returns 1,
// and changes nothing, if the key exists, else 0.
var createTxnScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 0
`)

// consumeTxnScript is mfa.TransactionStore.ConsumeTransaction. KEYS[1] the
// transaction. Returns its fields and removes it, or returns nil.
var consumeTxnScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], ` + txnFields + `)
if not v[1] then return false end
redis.call('DEL', KEYS[1])
return v
`)

// requestFieldNames are the fields of a tracked SAML request that Go
// decodes, in order; requestFields is the same list in Lua.
var (
	requestFieldNames = []string{"k", "r", "p", "b", "c", "e"}
	requestFields     = "'" + strings.Join(requestFieldNames, "', '") + "'"
)

// rememberRequestScript is sso.RequestStore.RememberRequest. KEYS[1] the
// request. ARGV: its PEXPIREAT, then its field/value pairs. Returns 1, and
// changes nothing, if the key exists (even holding a request expired by
// the caller's clock: IDs are 160 random bits, so a duplicate is a broken
// Rand), else 0.
var rememberRequestScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 0
`)

// consumeRequestScript is sso.RequestStore.ConsumeRequest. KEYS[1] the
// request. ARGV: now. Returns {1} if there is no request, {9}, and
// changes nothing, if it is malformed, {2} if it has expired at now (it
// is removed), else {0, its fields} (it is removed).
var consumeRequestScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {1} end
local v = redis.call('HMGET', KEYS[1], ` + requestFields + `)
for i = 1, ` + strconv.Itoa(len(requestFieldNames)) + ` do
  if not v[i] then return {9} end
end
if not string.match(v[6], '^%d+$') or not string.match(v[5], '^%d*$') then return {9} end
redis.call('DEL', KEYS[1])
if tonumber(ARGV[1]) >= tonumber(v[6]) then return {2} end
table.insert(v, 1, 0)
return v
`)

// insertIDScript is sso.ReplayCache.InsertID. KEYS[1] the replay record:
// a string holding its until (microseconds). ARGV: now, until, its
// PEXPIREAT. Returns 0 if a record is there whose until is after now
// (nothing changes), -1 if the key holds something else, else 1 after
// writing the record.
var insertIDScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  if not string.match(v, '^%d+$') then return -1 end
  if tonumber(ARGV[1]) < tonumber(v) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
`)

// subjectFieldNames are the fields of a SAML subject that Go decodes, in
// order; subjectFields is the same list in Lua. The last, p (the IdP), is
// absent from a subject written before this package kept it: it has no
// IdP.
var (
	subjectFieldNames = []string{"n", "f", "i", "e", "p"}
	subjectFields     = "'" + strings.Join(subjectFieldNames, "', '") + "'"
)

// luaSubjects is prepended to the subject scripts; ARGV[1] is the key
// prefix and ARGV[2] the tenant. Like the session scripts, they read and
// write keys named by data (a user's previous NameID, the users of an
// index), which a hash tag in the prefix keeps in the slot of KEYS.
var luaSubjects = `
local P, T = ARGV[1], ARGV[2]
local function num(n) return string.format('%.0f', n) end
local function sukey(u) return P .. 'su:' .. #T .. ':' .. T .. ':' .. u end
local function snkey(n) return P .. 'sn:' .. #T .. ':' .. T .. ':' .. n end
-- isa reports whether key k is absent or of type typ.
local function isa(k, typ)
  local ty = redis.call('TYPE', k).ok
  return ty == 'none' or ty == typ
end
-- subject returns the fields of subject key k, nil if k is gone, or false
-- if it is malformed. The IdP (v[5]) is false when the subject has none.
local function subject(k)
  local v = redis.call('HMGET', k, ` + subjectFields + `)
  if not (v[1] or v[2] or v[3] or v[4]) then return nil end
  if not (v[1] and v[2] and v[3] and v[4]) or not string.match(v[4], '^%d+$') then return false end
  return v
end
`

// putSubjectScript is sso.SubjectStore.PutSubject. KEYS[1] the user's
// subject, KEYS[2] the index of its new NameID. ARGV: prefix, tenant,
// user ID, now, Expires, the subject's PEXPIREAT, then NameID,
// NameIDFormat, SessionIndex and IdP. It takes the user out of the index of
// its previous NameID, replaces the subject whole, adds the user to the
// new index scored by Expires, drops from each index it changes the users
// expired at now, and makes that index expire with its last user. Returns
// 0, or 9, and changes nothing, if a key holds data of another kind.
var putSubjectScript = redis.NewScript(luaSubjects + `
-- tidy drops from index idx the users expired at now and makes idx
-- expire with its last user.
local function tidy(idx)
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', ARGV[4])
  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIREAT', idx, num(math.floor(tonumber(top[2]) / 1000) + 1)) end
end
if not isa(KEYS[1], 'hash') or not isa(KEYS[2], 'zset') then return 9 end
local old = subject(KEYS[1])
if old == false then return 9 end
local oldIdx = old and snkey(old[1])
if oldIdx == KEYS[2] then
  oldIdx = nil
elseif oldIdx and not isa(oldIdx, 'zset') then
  return 9
end
if oldIdx then
  redis.call('ZREM', oldIdx, ARGV[3])
  tidy(oldIdx)
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'n', ARGV[7], 'f', ARGV[8], 'i', ARGV[9], 'e', ARGV[5], 'p', ARGV[10])
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[3])
tidy(KEYS[2])
return 0
`)

// subjectsByNameIDScript is sso.SubjectStore.SubjectsByNameID. KEYS[1]
// the index of the NameID. ARGV: prefix, tenant, now, NameID, IdP.
// Returns {9} if a subject of the index is malformed, else {0, {user ID,
// then NameIDFormat, SessionIndex, Expires}...} for the users whose score
// is after now and whose subject still has that NameID, that IdP and an
// Expires after now, in no particular order (a subject without an IdP
// has none: it matches no IdP). It changes nothing: users the index keeps
// after their subject expired in Redis, or moved to another NameID, are
// skipped here and dropped by PutSubject or by the index's expiry.
var subjectsByNameIDScript = redis.NewScript(luaSubjects + `
local now = tonumber(ARGV[3])
local out = {0}
for _, u in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[3], '+inf')) do
  local v = subject(sukey(u))
  if v == false then return {9} end
  if v and v[1] == ARGV[4] and v[5] == ARGV[5] and now < tonumber(v[4]) then
    out[#out + 1] = {u, v[2], v[3], v[4]}
  end
end
return out
`)

var allScripts = []*redis.Script{
	createScript, touchScript, untouchScript, lookupTouchScript, deleteScript, deleteLineageScript, rotateScript,
	listScript, deleteByUserScript, reserveScript, settleScript,
	putCodeScript, checkCodeScript, hitScript, forgetScript, createTxnScript, consumeTxnScript,
	rememberRequestScript, consumeRequestScript, insertIDScript,
	putSubjectScript, subjectsByNameIDScript,
}
