"""Channels through HTTP: the guide's examples, bulk atomicity, update, filters, isolation."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

from tests.conftest import Client

CHANNEL_KEYS = ["id", "owner_id", "name", "created_at", "updated_at", "status"]


async def test_guide_channels(client: Client) -> None:
    uid, token = await client.user()
    st, ch, headers = await client.call("POST", "/channels", {"name": "mychan"}, token=token)
    assert st == 201 and headers["Location"] == f"/channels/{ch['id']}"
    assert list(ch) == CHANNEL_KEYS and ch["owner_id"] == uid and ch["status"] == "enabled"

    st, bulk, _ = await client.call("POST", "/channels/bulk", [{"name": "joe"}, {"name": "betty"}], token=token)
    assert st == 200 and bulk["total"] == 2
    assert [c["name"] for c in bulk["channels"]] == ["joe", "betty"]
    assert all(c["status"] == "enabled" and list(c) == CHANNEL_KEYS for c in bulk["channels"])

    st, listed, _ = await client.call("GET", "/channels", token=token)
    assert st == 200 and listed["total"] == 3 and listed["limit"] == 10 and listed["offset"] == 0
    assert [c["id"] for c in listed["channels"]] == [ch["id"]] + [c["id"] for c in bulk["channels"]]
    st, page, _ = await client.call("GET", "/channels?offset=0&limit=5", token=token)
    assert st == 200 and page["limit"] == 5 and len(page["channels"]) == 3
    assert (await client.call("GET", "/channels?limit=101", token=token))[0] == 400

    joe = bulk["channels"][0]["id"]
    st, disabled, _ = await client.call("POST", f"/channels/{joe}/disable", token=token)
    assert st == 200 and disabled["status"] == "disabled" and disabled["name"] == "joe"
    assert list(disabled) == CHANNEL_KEYS
    st, again, _ = await client.call("POST", f"/channels/{joe}/disable", token=token)
    assert st == 200 and again["status"] == "disabled"
    st, listed, _ = await client.call("GET", "/channels", token=token)
    assert listed["total"] == 2 and joe not in [c["id"] for c in listed["channels"]]
    st, got, _ = await client.call("GET", f"/channels/{joe}", token=token)
    assert st == 200 and got == again


async def test_bulk_channels_all_or_nothing(client: Client) -> None:
    _, token = await client.user()
    st, ch, _ = await client.call("POST", "/channels", {"name": "a"}, token=token)
    for items, status, message in [
        ([{"name": "x"}, {"name": ["no"]}], 400, "item 1:"),
        ([{"name": "x"}, {"id": ch["id"]}], 409, "item 1: channel id already exists"),
        ([{"metadata": "x"}], 400, "item 0: metadata must be a JSON object"),
    ]:
        st, err, _ = await client.call("POST", "/channels/bulk", items, token=token)
        assert st == status and err["error"].startswith(message), err
    st, listed, _ = await client.call("GET", "/channels?status=all", token=token)
    assert listed["total"] == 1


async def test_update_filters_and_isolation(client: Client) -> None:
    _, token = await client.user()
    b_id, b_tok = await client.user()
    st, ch, _ = await client.call("POST", "/channels", {"name": "c", "metadata": {"type": "data"}}, token=token)
    cid = ch["id"]
    st, body, _ = await client.call("PUT", f"/channels/{cid}",
                                    {"name": "data", "description": "d", "metadata": {"type": "data", "n": {"x": 1}}},
                                    token=token)
    assert st == 200 and body["description"] == "d" and body["name"] == "data"
    st, body, _ = await client.call("PATCH", f"/channels/{cid}", {"description": "e"}, token=token)
    assert st == 200 and body["description"] == "e" and body["name"] == "data"
    await client.call("POST", "/channels", {"name": "data", "metadata": {"type": "control"}}, token=token)
    md = "metadata=" + quote(json.dumps({"n": {"x": 1}}))
    for query, count in [("name=data", 2), (md, 1), ("metadata=" + quote('{"type":"control"}'), 1),
                         ("status=disabled", 0)]:
        st, page, _ = await client.call("GET", f"/channels?{query}", token=token)
        assert st == 200 and page["total"] == count, query
    st, got, _ = await client.call("GET", f"/channels/{cid}", token=token)
    assert got["description"] == "e" and got["metadata"] == {"type": "data", "n": {"x": 1}}

    assert (await client.call("GET", f"/channels/{cid}", token=b_tok))[0] == 404
    for method, path, body in [("PUT", f"/channels/{cid}", {"name": "x"}), ("POST", f"/channels/{cid}/disable", None)]:
        assert (await client.call(method, path, body, token=b_tok))[0] == 404
    st, _, _ = await client.call("POST", f"/channels/{cid}/share", {"user_ids": [b_id], "actions": ["c_list"]},
                                 token=token)
    assert st == 200
    st, page, _ = await client.call("GET", "/channels", token=b_tok)
    assert page["total"] == 1 and page["channels"][0]["id"] == cid
    assert (await client.call("PUT", f"/channels/{cid}", {"name": "x"}, token=b_tok))[0] == 403
    assert (await client.call("GET", f"/channels/{uuid.uuid4()}", token=token))[0] == 404
