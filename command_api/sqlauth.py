"""The message path's answers from the SQL views, while a Redis view is not whole (Redis lost
it and the projector rebuilds it: ``workers.redisguard``): a valid device is never refused
for want of Redis. Slower than Redis, and used only meanwhile."""

from __future__ import annotations

from projections.access import Snapshot
from projections.lookups import ThingKey
from service.container import Container

THING_VIEWS = ("things",)
ACCESS_VIEWS = ("things", "connections", "channels")

# What a secret names, its connection to the channel, the channel's status, and how far the
# three SQL views are (0 while one has no position yet), in one statement.
_SNAPSHOT = """
select t.id::text, t.status,
       (select c.actions from connections c
         where c.channel_id = %(channel)s and c.thing_id = t.id and c.active limit 1),
       (select ch.status from channels_view ch where ch.id = %(channel)s),
       (select case when count(*) = cardinality(%(views)s::text[]) then min(position) else 0 end
          from view_positions where view = any(%(views)s))
  from (select 1) one left join things_view t on t.secret = %(secret)s
"""


async def thing_key(c: Container, secret: str) -> ThingKey | None:
    """The thing whose secret this is, or None, from the things view."""
    async with c.pool.connection() as conn:
        row = await (await conn.execute(
            "select id::text, status from things_view where secret = %s", (secret,))).fetchone()
    return ThingKey(row[0], row[1] == "enabled") if row else None


async def snapshot(c: Container, secret: str, key_hash: str, channel_id: str) -> Snapshot:
    """What the SQL views say about a secret and a channel, as ``AccessView.snapshot``."""
    async with c.pool.connection() as conn:
        row = await (await conn.execute(_SNAPSHOT, {
            "channel": channel_id, "secret": secret, "views": list(ACCESS_VIEWS)})).fetchone()
    assert row is not None  # one row always
    tid, status, actions, channel_status, reached = row
    fr = c.freshness
    keys = [fr.key(channel_id), *([fr.key(tid)] if tid else [])]
    recorded = [int(v or 0) for v in await c.redis.mget(keys)]
    return Snapshot(
        thing_id=tid, enabled=status == "enabled", held_key=key_hash if tid else None,
        actions=frozenset(actions or ()), channel_enabled=channel_status != "disabled",
        target=max(recorded), reached=int(reached or 0))
