"""The access view's Lua scripts (``projections.access``): what one round trip reads, in one
instant, for the HTTP message path and for MQTT's connect."""

from __future__ import annotations

# One round trip, one instant: what a secret names, that thing's connection to the channel,
# the channel's status, the positions the caller must see (recorded under the thing's and the
# channel's ids by every command that changes them), the positions the views have reached,
# their markers (is each view whole?) and, with ARGV[11], the milliseconds left of that key
# (the caller's failure block, if any).
SNAPSHOT = """
local found = redis.call('HMGET', ARGV[1], 'id', 'status')
local tid = found[1]
local held, conn, rw_thing = false, false, false
if tid then
  held = redis.call('HGET', ARGV[2] .. tid, 'key')
  conn = redis.call('GET', ARGV[3] .. tid)
  rw_thing = redis.call('GET', ARGV[5] .. tid)
end
return {tid or false, found[2] or false, held or false, conn or false,
        redis.call('GET', ARGV[4]) or false, rw_thing or false,
        redis.call('GET', ARGV[5] .. ARGV[6]) or false,
        redis.call('GET', ARGV[7]) or false, redis.call('GET', ARGV[8]) or false,
        redis.call('GET', ARGV[9]) or false, redis.call('GET', ARGV[10]) or false,
        ARGV[11] and redis.call('PTTL', ARGV[11]) or -2}
"""


# The same for a thing's every channel (MQTT's connect): what a secret names, the key that
# thing holds, its connections to enabled channels (flat: channel, actions, …), the highest
# position recorded under its id and its channels' ids, and the views' positions and markers.
# With ARGV[10], first the milliseconds left of that key (the caller's failure block): while
# it lives nothing else is read. With ARGV[11..13] (a registry's key prefix, a field, an
# expiry in Unix seconds), an enabled thing's session is recorded in the same instant as
# ``HSET <prefix><thing> <field> '<reached> <expiry>'`` (``workers.revoker.Sessions``' shape),
# ``reached`` the lower of the two views' positions read here.
SESSIONS_KEPT = 64  # session records kept a thing (``THING``)
THING = """
local blocked = -2
if ARGV[10] and ARGV[10] ~= '' then
  blocked = redis.call('PTTL', ARGV[10])
  if blocked > 0 then return {false, false, false, '0', false, false, false, false, {}, blocked, 0} end
end
local found = redis.call('HMGET', ARGV[1], 'id', 'status')
local tid = found[1]
local held, rw, conns = false, tonumber(0), {}
if tid then
  held = redis.call('HGET', ARGV[2] .. tid, 'key')
  rw = tonumber(redis.call('GET', ARGV[5] .. tid) or '0')
  local flat = redis.call('HGETALL', ARGV[3] .. tid)
  for i = 1, #flat, 2 do
    local r = tonumber(redis.call('GET', ARGV[5] .. flat[i]) or '0')
    if r > rw then rw = r end
    if redis.call('GET', ARGV[4] .. flat[i]) ~= 'disabled' then
      conns[#conns + 1] = flat[i]
      conns[#conns + 1] = flat[i + 1]
    end
  end
end
local pos_keys, pos_access = redis.call('GET', ARGV[6]), redis.call('GET', ARGV[7])
local recorded = 0
if tid and found[2] == 'enabled' and ARGV[11] and ARGV[11] ~= '' then
  local reached = math.min(tonumber(pos_keys or '0'), tonumber(pos_access or '0'))
  local expiry = tonumber(ARGV[13])
  local registry = ARGV[11] .. tid
  redis.call('HSET', registry, ARGV[12], string.format('%d %d', reached, expiry))
  redis.call('EXPIREAT', registry, expiry + 60)
  if redis.call('HLEN', registry) > SESSIONS_KEPT then
    -- A thing that reconnects often: its oldest record goes (the earliest expiry: sessions
    -- live as long, so the first decided). One session per client id and 16 client ids a
    -- thing (workers.clientids) keep every open session among the newest.
    local all, oldest, oldest_field = redis.call('HGETALL', registry), nil, nil
    for i = 1, #all, 2 do
      local e = tonumber(string.match(all[i + 1], ' (%d+)$'))
      if oldest == nil or e < oldest then oldest, oldest_field = e, all[i] end
    end
    redis.call('HDEL', registry, oldest_field)
  end
  recorded = 1
end
return {tid or false, found[2] or false, held or false, tostring(rw), pos_keys or false,
        pos_access or false, redis.call('GET', ARGV[8]) or false, redis.call('GET', ARGV[9]) or false,
        conns, blocked, recorded}
""".replace("SESSIONS_KEPT", str(SESSIONS_KEPT))
