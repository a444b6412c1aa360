"""What a thing secret may do on every channel, for MQTT's connect: the same views and the same
freshness rule as the HTTP message path (``command_api.messages.authorized``), over all of the
thing's channels at once (the access view's ``tconn:{thing}``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from command_api.ratelimit import refuse_after_ms
from domain.things import secret_key
from projections.access import SessionRecord, ThingSnapshot
from service.container import Container

ATTEMPTS = 3
ACCESS_VIEWS_SQL = ("things", "connections", "channels")

# While a Redis view is not whole (Redis lost it and the projector rebuilds it), the SQL views
# answer: the thing, its active connections to channels that are not disabled, and how far
# the three views are (0 while one has no position yet).
_THING_SQL = "select id::text, status from things_view where secret = %s"
_CHANNELS_SQL = """
select c.channel_id::text, c.actions, coalesce(ch.status, 'enabled')
  from connections c left join channels_view ch on ch.id = c.channel_id
 where c.thing_id = %s and c.active
"""
_REACHED_SQL = """
select case when count(*) = cardinality(%(views)s::text[]) then min(position) else 0 end
  from view_positions where view = any(%(views)s)
"""


async def certificate(c: Container, serial: str, target: int) -> tuple[str, bool] | None:
    """The thing a certificate (by serial) was issued to and whether it is revoked, from the
    certs view once it has reached ``target``; None for a serial it does not know."""
    await c.freshness.wait(("certs",), target)
    async with c.pool.connection() as conn:
        row = await (await conn.execute(
            "select thing_id::text, revoked_at is not null from certs_view where serial = %s", (serial,))).fetchone()
    return (row[0], bool(row[1])) if row else None


async def cert_things(c: Container, serials: list[str]) -> list[str]:
    """The things certificates (by serial) were issued to."""
    async with c.pool.connection() as conn:
        rows = await (await conn.execute(
            "select distinct thing_id::text from certs_view where serial = any(%s)", (serials,))).fetchall()
    return [r[0] for r in rows]


async def channel_things(c: Container, channel_id: str) -> list[str]:
    """The things connected to a channel (the connections view)."""
    async with c.pool.connection() as conn:
        rows = await (await conn.execute(
            "select thing_id::text from connections where channel_id = %s and active", (channel_id,))).fetchall()
    return [r[0] for r in rows]


async def _from_sql(c: Container, secret: str, key_hash: str) -> ThingSnapshot:
    async with c.pool.connection() as conn:
        reached = (await (await conn.execute(_REACHED_SQL, {"views": list(ACCESS_VIEWS_SQL)})).fetchone()
                   or (0,))[0]
        row = await (await conn.execute(_THING_SQL, (secret,))).fetchone()
        rows = await (await conn.execute(_CHANNELS_SQL, (row[0],))).fetchall() if row else []
    if row is None:
        return ThingSnapshot(None, False, None, {}, 0, int(reached or 0))
    fr = c.freshness
    recorded = await c.redis.mget([fr.key(row[0]), *(fr.key(r[0]) for r in rows)])
    return ThingSnapshot(
        thing_id=row[0], enabled=row[1] == "enabled", held_key=key_hash,
        channels={r[0]: frozenset(r[1]) for r in rows if r[2] != "disabled"},
        target=max(int(v or 0) for v in recorded), reached=int(reached or 0))


async def thing_access(c: Container, secret: str, block_key: str | None = None,
                       session: SessionRecord | None = None) -> ThingSnapshot:
    """The views' answer about ``secret``, fresh within the read-your-writes bound: when they
    are behind the positions recorded under the thing's and its channels' ids we wait for them
    (bounded) and read again; an unknown secret waits once for the store's head (a thing made a
    moment ago is found too).

    In the same Redis round trip as each read: ``block_key``'s life (``TooManyFailures`` while
    the caller's address is refused, nothing checked) and ``session`` recorded for an enabled
    thing with the position that read saw (``ThingSnapshot.recorded``; not by the SQL views)."""
    view, keys, fr = c.access(), c.thing_keys(), c.freshness
    key_hash = secret_key(secret)

    async def read() -> tuple[ThingSnapshot, tuple[str, ...]]:
        snap = await view.thing_snapshot(keys, fr.key(""), key_hash, block_key, session)
        refuse_after_ms(snap.blocked_ms)
        if snap.whole:
            return snap, (keys.name, view.name)
        return await _from_sql(c, secret, key_hash), ACCESS_VIEWS_SQL

    return await fresh(read, fr.wait, c.store.max_position)


async def fresh(read: Callable[[], Awaitable[tuple[ThingSnapshot, tuple[str, ...]]]],
                wait: Callable[[tuple[str, ...], int], Awaitable[bool]],
                head: Callable[[], Awaitable[int]]) -> ThingSnapshot:
    """``read`` again until the views have reached what the snapshot must show (the rule of
    ``command_api.messages.authorized``)."""
    snap, views = await read()
    seen_thing, waited_head = False, False
    for _ in range(ATTEMPTS):
        if snap.thing_id is None:
            if seen_thing or waited_head:
                break  # the thing's own position said it no longer holds this secret
            await wait(views, await head())
            waited_head = True
        elif snap.reached >= snap.target:
            break
        else:
            seen_thing = True
            await wait(views, snap.target)
        snap, views = await read()
    return snap
