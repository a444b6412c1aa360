"""Every view can be dropped and rebuilt from the store: the rebuilt one equals the live one."""

from __future__ import annotations

from typing import Any

from tests.conftest import Client, eventually


async def _rows(pool: Any, table: str, order: str) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        return await (await conn.execute(f"select * from {table} order by {order}")).fetchall()  # noqa: S608


async def _redis_view(redis: Any, prefix: str) -> dict[bytes, dict[bytes, bytes]]:
    out = {}
    for pattern in (f"{prefix}thingkey:*", f"{prefix}thing:*"):
        async for key in redis.scan_iter(match=pattern):
            out[key] = await redis.hgetall(key)
    return out


async def test_rebuilt_views_equal_live_ones(client: Client, service: Any) -> None:
    from projections.channels import TABLES as CHANNEL_TABLES
    from projections.envelope import decode, encode
    from projections.things import TABLES as THING_TABLES

    c = service.container
    a_id, a = await client.user()
    b_id, _ = await client.user()
    _, bulk, _ = await client.call("POST", "/things/bulk",
                                   [{"name": f"t{i}", "metadata": {"i": i}, "tags": ["x"]} for i in range(6)], token=a)
    ids = [t["id"] for t in bulk["things"]]
    await client.call("POST", f"/things/{ids[0]}/disable", token=a)
    await client.call("PATCH", f"/things/{ids[1]}/secret", {"secret": "rotated-1"}, token=a)
    await client.call("PATCH", f"/things/{ids[2]}", {"name": "renamed"}, token=a)
    await client.call("POST", f"/things/{ids[3]}/share", {"user_ids": [b_id], "actions": ["c_update"]}, token=a)
    _, ch, _ = await client.call("POST", "/channels", {"name": "c", "description": "d"}, token=a)
    await client.call("POST", f"/channels/{ch['id']}/disable", token=a)
    await client.call("POST", f"/channels/{ch['id']}/share", {"user_ids": [b_id], "actions": ["c_list"]}, token=a)

    head = await c.store.max_position()
    views = {v.name: v for v in c.views()}

    async def caught_up() -> bool:
        positions = [(await v.position())[0] for v in views.values()]
        return all(p >= head for p in positions)

    await eventually(caught_up, what="views at the head")
    # The live audit log got the unique claims' keys unopened (no view reads them): the rebuilt
    # one, fed every credential opened, must hide them alike.
    live = {t: await _rows(c.pool, t, "1, 2") for t in (*THING_TABLES, *CHANNEL_TABLES, "users_view", "events_view")}
    live_redis = await _redis_view(c.redis, c.settings.redis_prefix)
    assert len(live["thing_shares"]) == 1 and len(live["things_view"]) == 6 and len(live_redis) == 12

    # Stop the projector so only the rebuild writes, then rebuild each view from the store.
    service.projector.stop()
    for task in service.tasks:
        if task.get_name() == "projector":
            await task
    events = await c.store.read(0, 10_000)  # as on the bus: the views need the secrets opened
    batch = [(i + 1, decode(encode(e), c.store.sealer)) for i, e in enumerate(events)]
    await views["things"].reset(THING_TABLES)
    await views["channels"].reset(CHANNEL_TABLES)
    await views["users"].reset(("users_view",))
    await views["events"].reset(("events_view",))
    await views["thing_keys"].reset()
    assert await _rows(c.pool, "things_view", "1") == [] and await _redis_view(c.redis, c.settings.redis_prefix) == {}
    for view in views.values():
        assert await view.apply(batch) == head
    rebuilt = {t: await _rows(c.pool, t, "1, 2") for t in live}
    assert rebuilt == live
    assert await _redis_view(c.redis, c.settings.redis_prefix) == live_redis
    # Applying the same events again changes nothing.
    for view in views.values():
        await view.apply(batch)
    assert {t: await _rows(c.pool, t, "1, 2") for t in live} == live
