"""`smq replay`: every view rebuilt from position 0 into fresh storage equals the live one,
and a tampered live row or key is found."""

from __future__ import annotations

from typing import Any

from service.replay import replay
from tests.conftest import Client
from tests.faults import Faults, inject


async def _mixed_commands(client: Client) -> None:
    """A few hundred events: users, bulk things, channels, connections, disables, a provisioning."""
    users = [await client.user() for _ in range(4)]
    (_, a), (b_id, b) = users[0], users[1]
    for owner in (a, b):
        st, bulk, _ = await client.call("POST", "/things/bulk", [
            {"name": f"t{i}", "metadata": {"i": i}, "tags": ["x"]} for i in range(40)], token=owner)
        assert st == 200, bulk
    _, mine, _ = await client.call("GET", "/things?limit=100", token=a)
    tids = [t["id"] for t in mine["things"]]
    st, chans, _ = await client.call("POST", "/channels/bulk",
                                     [{"name": f"c{i}"} for i in range(6)], token=a)
    assert st == 200, chans
    cids = [c["id"] for c in chans["channels"]]
    st, body, _ = await client.call("POST", "/connect", {"channel_ids": cids[:3], "thing_ids": tids[:10]}, token=a)
    assert st == 201, body
    for tid in tids[:3]:
        assert (await client.call("POST", f"/things/{tid}/disable", token=a))[0] == 200
    assert (await client.call("PATCH", f"/things/{tids[4]}/secret", {"secret": "rotated-4"}, token=a))[0] == 200
    assert (await client.call("DELETE", f"/channels/{cids[0]}/things/{tids[5]}", token=a))[0] == 204
    assert (await client.call("POST", f"/channels/{cids[1]}/disable", token=a))[0] == 200
    assert (await client.call("POST", f"/things/{tids[6]}/share",
                              {"user_ids": [b_id], "actions": ["c_list"]}, token=a))[0] == 200
    assert (await client.call("POST", f"/users/{users[3][0]}/disable", token=a))[0] in (200, 403, 404)
    st, res, _ = await client.call("POST", "/mapping", {"name": "gw", "external_id": "gw-1",
                                                        "external_key": "k1"}, token=b)
    assert st == 201, res


async def test_replay_of_a_busy_store_matches_every_view(client: Client, service: Any) -> None:
    await _mixed_commands(client)
    c = service.container
    # A failed provisioning: its things and channels made, connected, then removed.
    _, token = await client.user()
    inject(c, Faults(fail_at="gateway"))
    st, _, _ = await client.call("POST", "/mapping", {"external_id": "gw-f", "external_key": "k"}, token=token)
    assert st >= 400
    inject(c, Faults())
    head = await c.store.max_position()
    assert head >= 200

    report = await replay(c, wait=10)

    assert report.ok, report.lines()
    assert {v.view for v in report.views} == {v.name for v in c.views()}
    assert all(v.position >= head and v.digest == v.live for v in report.views)
    assert report.events >= 200 and report.rate > 0
    assert report.lines()[-1].startswith(f"replayed {report.events} events up to position {head}")
    # The fresh schema and keys are gone.
    async with c.pool.connection() as conn:
        row = await (await conn.execute("select count(*) from information_schema.schemata"
                                        " where schema_name = %s", (report.schema,))).fetchone()
    assert row == (0,)
    assert [k async for k in c.redis.scan_iter(match=f"{report.prefix}*")] == []


async def test_replay_finds_a_tampered_row_and_a_tampered_key(client: Client, service: Any) -> None:
    _, token = await client.user()
    st, bulk, _ = await client.call("POST", "/things/bulk", [{"name": f"t{i}"} for i in range(5)], token=token)
    assert st == 200
    c = service.container
    assert (await replay(c, wait=10)).ok

    async with c.pool.connection() as conn:
        await conn.execute("update things_view set name = 'tampered' where id = %s", (bulk["things"][0]["id"],))
    key = f"{c.settings.redis_prefix}thing:{bulk['things'][1]['id']}"
    assert await c.redis.hset(key, "status", "disabled") == 0

    report = await replay(c, wait=10, keep=True)

    status = {v.view: v.status for v in report.views}
    assert status["things"] == "MISMATCH" and status["thing_keys"] == "MISMATCH"
    assert {s for v, s in status.items() if v not in ("things", "thing_keys")} == {"OK"}
    assert not report.ok
    assert any(line.startswith("things ") and line.endswith(" MISMATCH") for line in report.lines())
    # --keep leaves the rebuilt copy for a look: it has the true name.
    async with c.pool.connection() as conn:
        row = await (await conn.execute(f"select name from {report.schema}.things_view where id = %s",  # noqa: S608
                                        (bulk["things"][0]["id"],))).fetchone()
        assert row == ("t0",)
        await conn.execute(f"drop schema {report.schema} cascade")
