"""Connections and policies through HTTP, with the real store, bus and views behind: the
guide's examples, all-or-nothing bulks, paging, and who may connect what."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Client

POLICY_KEYS = ["owner_id", "subject", "object", "actions", "created_at", "updated_at"]


async def listed(client: Client, token: str, path: str) -> tuple[int, list[str]]:
    st, body, _ = await client.call("GET", path, token=token)
    assert st == 200, body
    items = body.get("things", body.get("channels"))
    return body["total"], [i["id"] for i in items]


async def setup(client: Client) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    uid, token = await client.user()
    st, things, _ = await client.call("POST", "/things/bulk", [{"name": "weio"}, {"name": "bob"}], token=token)
    assert st == 200
    st, chans, _ = await client.call("POST", "/channels/bulk", [{"name": "joe"}, {"name": "betty"}], token=token)
    assert st == 200
    return uid, token, {t["name"]: t for t in things["things"]}, {c["name"]: c for c in chans["channels"]}


async def test_guide_connections(client: Client) -> None:
    uid, token, things, chans = await setup(client)
    bob, weio, betty, joe = things["bob"], things["weio"], chans["betty"], chans["joe"]

    st, policy, _ = await client.call("PUT", f"/channels/{betty['id']}/things/{bob['id']}", token=token)
    assert st == 201, policy
    assert list(policy) == POLICY_KEYS
    assert policy["owner_id"] == uid and policy["subject"] == bob["id"] and policy["object"] == betty["id"]
    assert policy["actions"] == ["m_write", "m_read"]
    assert policy["created_at"].endswith("Z") and policy["updated_at"].endswith("Z")
    # Repeating it is not an error, and changes nothing.
    st, again, headers = await client.call("PUT", f"/channels/{betty['id']}/things/{bob['id']}", token=token)
    assert st == 201 and again == policy and "X-Smq-Position" not in headers

    # The guide's listings, read right after the write.
    st, body, _ = await client.call("GET", f"/channels/{betty['id']}/things", token=token)
    assert st == 200
    assert body == {"limit": 10, "offset": 0, "total": 1, "things": [bob]}
    st, body, _ = await client.call("GET", f"/things/{bob['id']}/channels", token=token)
    assert st == 200
    assert body == {"limit": 10, "offset": 0, "total": 1, "channels": [betty]}

    # Bulk, as the guide sends it; the pair already connected stays as it was.
    st, _, _ = await client.call("POST", "/connect", {"channel_ids": [joe["id"], betty["id"]],
                                                      "thing_ids": [weio["id"], bob["id"]]}, token=token)
    assert st == 201
    assert await listed(client, token, f"/channels/{betty['id']}/things") == (2, [bob["id"], weio["id"]])
    assert await listed(client, token, f"/channels/{joe['id']}/things") == (2, [weio["id"], bob["id"]])
    assert await listed(client, token, f"/things/{bob['id']}/channels") == (2, [betty["id"], joe["id"]])
    assert await listed(client, token, f"/things/{weio['id']}/channels?limit=1&offset=1") == (2, [betty["id"]])

    # Disconnect: 204 with no body, then 404.
    st, body, _ = await client.call("DELETE", f"/channels/{betty['id']}/things/{bob['id']}", token=token)
    assert st == 204 and body is None
    st, err, _ = await client.call("DELETE", f"/channels/{betty['id']}/things/{bob['id']}", token=token)
    assert st == 404 and err["error"]
    assert await listed(client, token, f"/channels/{betty['id']}/things") == (1, [weio["id"]])
    assert await listed(client, token, f"/things/{bob['id']}/channels") == (1, [joe["id"]])
    # Reconnected, it comes last: lists follow the order in which connections were made.
    st, _, _ = await client.call("POST", f"/channels/{betty['id']}/things/{bob['id']}",
                                 {"actions": ["m_read"]}, token=token)
    assert st == 201
    assert await listed(client, token, f"/channels/{betty['id']}/things") == (2, [weio["id"], bob["id"]])

    # Bulk disconnect of the whole cross product.
    st, _, _ = await client.call("POST", "/disconnect", {"channel_ids": [joe["id"], betty["id"]],
                                                         "thing_ids": [weio["id"], bob["id"]]}, token=token)
    assert st == 204
    assert await listed(client, token, f"/channels/{betty['id']}/things") == (0, [])
    assert await listed(client, token, f"/things/{weio['id']}/channels") == (0, [])


async def test_lists_page_filter_and_refuse_bad_values(client: Client) -> None:
    _, token = await client.user()
    st, bulk, _ = await client.call("POST", "/things/bulk", [{"name": f"t{i}"} for i in range(12)], token=token)
    tids = [t["id"] for t in bulk["things"]]
    st, ch, _ = await client.call("POST", "/channels", {"name": "c"}, token=token)
    st, _, _ = await client.call("POST", "/connect", {"channel_ids": [ch["id"]], "thing_ids": tids}, token=token)
    assert st == 201
    assert await listed(client, token, f"/channels/{ch['id']}/things") == (12, tids[:10])
    assert await listed(client, token, f"/channels/{ch['id']}/things?offset=10&limit=5") == (12, tids[10:])
    await client.call("POST", f"/things/{tids[0]}/disable", token=token)
    assert (await listed(client, token, f"/channels/{ch['id']}/things"))[0] == 11
    assert (await listed(client, token, f"/channels/{ch['id']}/things?status=all"))[0] == 12
    assert await listed(client, token, f"/channels/{ch['id']}/things?name=t3") == (1, [tids[3]])
    for bad in ["limit=0", "limit=101", "offset=-1", "limit=x", "status=gone"]:
        st, err, _ = await client.call("GET", f"/channels/{ch['id']}/things?{bad}", token=token)
        assert st == 400 and err["error"], bad
        st, err, _ = await client.call("GET", f"/things/{tids[1]}/channels?{bad}", token=token)
        assert st == 400 and err["error"], bad
    # Someone else's channel or thing is 404; no token is 401.
    _, other = await client.user()
    assert (await client.call("GET", f"/channels/{ch['id']}/things", token=other))[0] == 404
    assert (await client.call("GET", f"/things/{tids[1]}/channels", token=other))[0] == 404
    assert (await client.call("GET", f"/channels/{uuid.uuid4()}/things", token=token))[0] == 404
    assert (await client.call("GET", f"/channels/{ch['id']}/things"))[0] == 401


async def test_bulk_with_one_unknown_id_connects_nothing(client: Client) -> None:
    _, token, things, chans = await setup(client)
    tids = [t["id"] for t in things.values()]
    cids = [c["id"] for c in chans.values()]
    _, other = await client.user()
    _, foreign, _ = await client.call("POST", "/things", {"name": "not yours"}, token=other)
    cases = [
        ({"channel_ids": cids, "thing_ids": [*tids, str(uuid.uuid4())]}, 404),
        ({"channel_ids": [*cids, str(uuid.uuid4())], "thing_ids": tids}, 404),
        ({"channel_ids": cids, "thing_ids": [*tids, foreign["id"]]}, 404),
        ({"channel_ids": cids, "thing_ids": [*tids, "not-a-uuid"]}, 400),
        ({"channel_ids": cids, "thing_ids": tids, "actions": ["c_list"]}, 400),
        ({"channel_ids": cids}, 400),
        ({"channel_ids": [], "thing_ids": tids}, 400),
    ]
    for body, status in cases:
        st, err, _ = await client.call("POST", "/connect", body, token=token)
        assert st == status, (body, err)
        assert err["error"]
    for cid in cids:
        assert await listed(client, token, f"/channels/{cid}/things") == (0, [])
    for tid in tids:
        assert await listed(client, token, f"/things/{tid}/channels") == (0, [])

    # Upstream's and later clients' names for the same thing.
    st, _, _ = await client.call("POST", "/connect", {"group_ids": cids[:1], "client_ids": tids}, token=token)
    assert st == 201
    st, _, _ = await client.call("POST", "/connect", {"objects": cids[1:], "subjects": tids[:1]}, token=token)
    assert st == 201
    assert (await listed(client, token, f"/channels/{cids[0]}/things"))[0] == 2
    assert (await listed(client, token, f"/channels/{cids[1]}/things"))[0] == 1
    # A bulk disconnect naming one pair that is not connected disconnects nothing.
    st, _, _ = await client.call("POST", "/disconnect", {"channel_ids": cids, "thing_ids": tids}, token=token)
    assert st == 404
    assert (await listed(client, token, f"/channels/{cids[0]}/things"))[0] == 2


async def test_policies_and_g_add(client: Client) -> None:
    a_id, a = await client.user()
    b_id, b = await client.user()
    _, ch, _ = await client.call("POST", "/channels", {"name": "shared"}, token=a)
    cid = ch["id"]
    _, a_thing, _ = await client.call("POST", "/things", {"name": "a's"}, token=a)
    _, b_thing, _ = await client.call("POST", "/things", {"name": "b's"}, token=b)
    connect_b = f"/channels/{cid}/things/{b_thing['id']}"

    # b cannot see the channel at all: 404.
    st, err, _ = await client.call("PUT", connect_b, token=b)
    assert st == 404 and err["error"] == "channel not found"
    assert (await client.call("GET", f"/channels/{cid}", token=b))[0] == 404

    # With c_list b sees it, in reads and lists, but may not connect: 403.
    st, pol, _ = await client.call("POST", "/policies", {"subject": b_id, "object": cid, "actions": ["c_list"]},
                                   token=a)
    assert st == 201 and list(pol) == POLICY_KEYS
    assert pol["owner_id"] == a_id and pol["subject"] == b_id and pol["object"] == cid
    assert pol["actions"] == ["c_list"]
    st, got, _ = await client.call("GET", f"/channels/{cid}", token=b)
    assert st == 200 and got["id"] == cid
    st, mine, _ = await client.call("GET", "/channels", token=b)
    assert mine["total"] == 1
    st, err, _ = await client.call("PUT", connect_b, token=b)
    assert st == 403 and err["error"]
    assert (await client.call("PUT", f"/channels/{cid}", {"name": "b's now"}, token=b))[0] == 403

    # With g_add b connects its own thing, not a's.
    st, pol, _ = await client.call("POST", "/policies", {"subject": b_id, "object": cid, "actions": ["g_add"]},
                                   token=a)
    assert st == 201 and pol["actions"] == ["c_list", "g_add"]
    st, conn, _ = await client.call("PUT", connect_b, token=b)
    assert st == 201 and conn["owner_id"] == b_id
    st, err, _ = await client.call("PUT", f"/channels/{cid}/things/{a_thing['id']}", token=b)
    assert st == 404
    st, _, _ = await client.call("PUT", f"/channels/{cid}/things/{a_thing['id']}", token=a)
    assert st == 201
    # Each sees the connected things it may see: a thing's secret is for its owner and the
    # users it was shared with, not for whoever owns a channel it is connected to.
    assert await listed(client, a, f"/channels/{cid}/things") == (1, [a_thing["id"]])
    assert await listed(client, b, f"/channels/{cid}/things") == (1, [b_thing["id"]])
    assert await listed(client, b, f"/things/{b_thing['id']}/channels") == (1, [cid])

    # Policies: listed for the owner and for the subject, not for others; only the owner removes.
    _, c = await client.user()
    for token in (a, b):
        st, page, _ = await client.call("GET", "/policies", token=token)
        assert st == 200 and page["total"] == 1 and page["limit"] == 10 and page["offset"] == 0
        assert page["policies"][0] == pol
    assert (await client.call("GET", "/policies", token=c))[1]["total"] == 0
    assert (await client.call("GET", "/policies?limit=0", token=a))[0] == 400
    assert (await client.call("POST", "/policies", {"subject": b_id, "object": cid, "actions": ["fly"]},
                              token=a))[0] == 400
    assert (await client.call("DELETE", f"/policies/{b_id}/{cid}", token=b))[0] == 403
    assert (await client.call("DELETE", f"/policies/{b_id}/{cid}", token=c))[0] == 404
    st, body, _ = await client.call("DELETE", f"/policies/{b_id}/{cid}", token=a)
    assert st == 204 and body is None
    assert (await client.call("DELETE", f"/policies/{b_id}/{cid}", token=a))[0] == 404
    assert (await client.call("GET", f"/channels/{cid}", token=b))[0] == 404
    assert (await client.call("GET", "/policies", token=a))[1]["total"] == 0
    assert (await client.call("PUT", connect_b, token=b))[0] == 404


async def test_connection_views_rebuild_equal_live_ones(client: Client, service: Any) -> None:
    from projections.connections import TABLES
    from tests.conftest import eventually

    c = service.container
    _, a = await client.user()
    b_id, _ = await client.user()
    _, bulk, _ = await client.call("POST", "/things/bulk", [{"name": f"t{i}"} for i in range(3)], token=a)
    _, chans, _ = await client.call("POST", "/channels/bulk", [{"name": "x"}, {"name": "y"}], token=a)
    tids, cids = [t["id"] for t in bulk["things"]], [ch["id"] for ch in chans["channels"]]
    await client.call("POST", "/connect", {"channel_ids": cids, "thing_ids": tids}, token=a)
    await client.call("DELETE", f"/channels/{cids[0]}/things/{tids[0]}", token=a)
    await client.call("PUT", f"/channels/{cids[1]}/things/{tids[1]}", {"actions": ["m_read"]}, token=a)
    await client.call("POST", f"/channels/{cids[1]}/disable", token=a)
    await client.call("POST", "/policies", {"subject": b_id, "object": cids[0], "actions": ["g_add"]}, token=a)

    head = await c.store.max_position()
    views = {v.name: v for v in c.views() if v.name in ("connections", "access")}

    async def caught_up() -> bool:
        return all([(await v.position())[0] >= head for v in views.values()])

    async def redis_rows() -> dict[bytes, bytes]:
        p = c.settings.redis_prefix
        return {k: await c.redis.get(k) for pattern in (f"{p}conn:*", f"{p}chan:*")
                async for k in c.redis.scan_iter(match=pattern)}

    async def sql_rows() -> dict[str, list[Any]]:
        async with c.pool.connection() as conn:
            return {t: await (await conn.execute(f"select * from {t} order by id")).fetchall()  # noqa: S608
                    for t in TABLES}

    await eventually(caught_up, what="views at the head")
    live, live_redis = await sql_rows(), await redis_rows()
    assert len(live["connections"]) == 6 and len(live["channel_policies"]) == 1
    assert len(live_redis) == 6  # five connections and one disabled channel

    service.projector.stop()
    for task in service.tasks:
        if task.get_name() == "projector":
            await task
    events = await c.store.read(0, 10_000)
    batch = [(i + 1, e) for i, e in enumerate(events)]
    await views["connections"].reset(TABLES)
    await views["access"].reset()
    assert await redis_rows() == {}
    for view in views.values():
        assert await view.apply(batch) == head
        await view.apply(batch)  # again: nothing changes
    assert await sql_rows() == live and await redis_rows() == live_redis
