"""Which thing an MQTT client id belongs to (part of the `authz` role).

NATS keeps one MQTT session per client id in the things' account: a connect with a client id
in use closes the session holding it, and with ``clean_session=false`` takes over its persisted
subscriptions and the QoS 1 messages queued for it. Any thing could so cut another off, or, as a
reader of the same channel, take the messages queued for it. So a client id belongs to the
first thing admitted with it, and a connect of another thing with it is refused (before NATS
closes anything); except that a client id containing a thing's own id (the Agent's
``agent-<thing id>``) always goes to that thing, so nobody can squat it in advance.

Redis, under the settings' prefix: ``mqttid:<sha256 of the client id>`` the owning thing id;
``mqttids:<thing>`` a sorted set of its client ids' digests by last use. Both live ``TTL``
after the last use; a thing keeps its ``PER_THING`` most recently used client ids (a device
that makes up a new one at each connect does not fill Redis); a removed thing's ids are
released (``workers.revoker``).
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from infra.fastredis import ScriptHost

TTL = 30 * 24 * 3600  # seconds a client id stays its thing's after its last use
PER_THING = 16        # client ids one thing holds at most (its least recently used is freed)

# ARGV: 1 the id's key, 2 the thing's set, 3 thing, 4 the id's digest, 5 TTL, 6 PER_THING,
# 7 the ids' key prefix, 8 '1' when the client id contains the thing's id, 9 the sets' prefix.
# Answer: the owning thing when it is another (refused), else false (claimed).
_CLAIM = """
local owner = redis.call('GET', ARGV[1])
if owner and owner ~= ARGV[3] then
  if ARGV[8] ~= '1' then return owner end
  redis.call('ZREM', ARGV[9] .. owner, ARGV[4])
end
redis.call('SET', ARGV[1], ARGV[3], 'EX', ARGV[5])
local t = redis.call('TIME')
redis.call('ZADD', ARGV[2], tonumber(t[1]) + tonumber(t[2]) / 1000000, ARGV[4])
redis.call('EXPIRE', ARGV[2], ARGV[5])
local extra = redis.call('ZCARD', ARGV[2]) - tonumber(ARGV[6])
if extra > 0 then
  for _, d in ipairs(redis.call('ZRANGE', ARGV[2], 0, extra - 1)) do
    if redis.call('GET', ARGV[7] .. d) == ARGV[3] then redis.call('DEL', ARGV[7] .. d) end
  end
  redis.call('ZREMRANGEBYRANK', ARGV[2], 0, extra - 1)
end
return false
"""

# ARGV: 1 the thing's set, 2 thing, 3 the ids' key prefix. Answer: how many were freed.
_RELEASE = """
local freed = 0
for _, d in ipairs(redis.call('ZRANGE', ARGV[1], 0, -1)) do
  if redis.call('GET', ARGV[3] .. d) == ARGV[2] then
    redis.call('DEL', ARGV[3] .. d)
    freed = freed + 1
  end
end
redis.call('DEL', ARGV[1])
return freed
"""


class ClientIds:
    """MQTT client ids bound to the things that use them, in Redis."""

    def __init__(self, redis: Redis, prefix: str, ttl: int = TTL, per_thing: int = PER_THING,
                 scripts: ScriptHost | None = None) -> None:
        self.prefix, self.ttl, self.per_thing = prefix, ttl, per_thing
        host = scripts if scripts is not None else redis  # the lean caller (infra.fastredis), else the client
        self._claim = host.register_script(_CLAIM)
        self._release = host.register_script(_RELEASE)

    @staticmethod
    def digest(client_id: str) -> str:
        return hashlib.sha256(client_id.encode()).hexdigest()[:32]

    async def claim(self, client_id: str, thing_id: str) -> bool:
        """Whether ``thing_id`` may use ``client_id`` (it then holds it); False while another
        thing holds it."""
        digest = self.digest(client_id)
        own = "1" if thing_id in client_id else "0"
        owner = await self._claim(args=[f"{self.prefix}mqttid:{digest}", f"{self.prefix}mqttids:{thing_id}",
                                        thing_id, digest, self.ttl, self.per_thing, f"{self.prefix}mqttid:",
                                        own, f"{self.prefix}mqttids:"])
        return owner is None

    async def release(self, thing_id: str) -> int:
        """Free every client id ``thing_id`` holds (a removed thing); how many."""
        return int(await self._release(args=[f"{self.prefix}mqttids:{thing_id}", thing_id, f"{self.prefix}mqttid:"]))
