"""Things through HTTP, with the real store, bus and views behind: the guide's examples,
bulk atomicity, paging and filters, isolation and sharing, enable/disable, /identify."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

from tests.conftest import ADMIN, Client

THING_KEYS = ["id", "name", "owner", "credentials", "created_at", "updated_at", "status"]


async def total(client: Client, token: str, query: str = "") -> int:
    st, body, _ = await client.call("GET", f"/things?{query}", token=token)
    assert st == 200, body
    return body["total"]


async def identify(client: Client, secret: str) -> tuple[int, Any]:
    st, body, _ = await client.call("POST", "/identify", headers={"Authorization": f"Thing {secret}"})
    return st, body


async def test_guide_things(client: Client) -> None:
    uid, token = await client.user()
    st, thing, headers = await client.call("POST", "/things", {"name": "weio"}, token=token)
    assert st == 201, thing
    assert headers["Location"] == f"/things/{thing['id']}"
    assert list(thing) == THING_KEYS
    assert thing["name"] == "weio" and thing["owner"] == uid and thing["status"] == "enabled"
    assert uuid.UUID(thing["credentials"]["secret"])

    st, bulk, _ = await client.call("POST", "/things/bulk", [{"name": "weio"}, {"name": "bob"}], token=token)
    assert st == 200 and bulk["total"] == 2
    assert [t["name"] for t in bulk["things"]] == ["weio", "bob"]
    assert all(list(t) == THING_KEYS for t in bulk["things"])

    # Read-your-writes: the list right after the writes.
    st, listed, _ = await client.call("GET", "/things", token=token)
    assert st == 200 and listed["limit"] == 10 and listed["offset"] == 0 and listed["total"] == 3
    assert [t["id"] for t in listed["things"]] == [thing["id"]] + [t["id"] for t in bulk["things"]]
    assert listed["things"][0] == thing

    st, page, _ = await client.call("GET", "/things?offset=0&limit=5&name=%22weio%22", token=token)
    assert st == 200 and page["limit"] == 5 and page["total"] == 2
    assert {t["name"] for t in page["things"]} == {"weio"}

    st, got, _ = await client.call("GET", f"/things/{thing['id']}", token=token)
    assert st == 200 and got == thing

    st, disabled, _ = await client.call("POST", f"/things/{thing['id']}/disable", token=token)
    assert st == 200 and disabled["status"] == "disabled" and disabled["id"] == thing["id"]
    assert list(disabled) == THING_KEYS
    assert await total(client, token) == 2


async def test_bulk_is_all_or_nothing(client: Client) -> None:
    _, token = await client.user()
    st, _, _ = await client.call("POST", "/things", {"name": "a", "credentials": {"secret": "taken-1"}},
                                 token=token)
    assert st == 201
    cases = [
        ([{"name": "ok"}, {"name": 7}], 400, "item 1:"),
        ([{"name": "ok"}, {"credentials": {"secret": "taken-1"}}], 409, "item 1: secret already exists"),
        ([{"credentials": {"secret": "s-1"}}, {"name": "x"}, {"credentials": {"secret": "s-1"}}], 409,
         "item 2: secret already exists"),
        ([{"name": "ok"}, {"id": "nope"}], 400, "item 1: id must be a UUID"),
        ([{"name": "ok"}, "not an object"], 400, "item 1:"),
    ]
    for items, status, message in cases:
        st, err, _ = await client.call("POST", "/things/bulk", items, token=token)
        assert st == status, (items, err)
        assert err["error"].startswith(message), err
    st, err, _ = await client.call("POST", "/things/bulk", {"name": "not a list"}, token=token)
    assert st == 400
    assert await total(client, token, "status=all") == 1
    # The secrets of the refused batches were not claimed.
    st, _, _ = await client.call("POST", "/things", {"credentials": {"secret": "s-1"}}, token=token)
    assert st == 201


async def test_duplicate_id_and_secret_are_409(client: Client) -> None:
    _, token = await client.user()
    _, other = await client.user()
    tid = str(uuid.uuid4())
    st, body, _ = await client.call("POST", "/things", {"id": tid, "credentials": {"secret": "my-secret"}},
                                    token=token)
    assert st == 201 and body["id"] == tid and body["credentials"]["secret"] == "my-secret"
    st, err, _ = await client.call("POST", "/things", {"id": tid}, token=other)
    assert st == 409 and "thing id already exists" in err["error"]
    st, err, _ = await client.call("POST", "/things", {"credentials": {"secret": "my-secret"}}, token=other)
    assert st == 409 and "secret already exists" in err["error"]
    st, err, _ = await client.call("POST", "/things", {"credentials": {"secret": "has space"}}, token=token)
    assert st == 400
    assert await total(client, other, "status=all") == 0


async def test_paging_25_with_limit_7(client: Client) -> None:
    _, token = await client.user()
    st, bulk, _ = await client.call("POST", "/things/bulk", [{"name": f"t{i}"} for i in range(25)], token=token)
    assert st == 200
    seen: list[str] = []
    for offset in range(0, 28, 7):
        st, page, _ = await client.call("GET", f"/things?offset={offset}&limit=7", token=token)
        assert st == 200 and page["total"] == 25 and page["offset"] == offset and page["limit"] == 7
        assert len(page["things"]) == min(7, max(0, 25 - offset))
        seen += [t["id"] for t in page["things"]]
    assert seen == [t["id"] for t in bulk["things"]]
    for bad in ["limit=0", "limit=101", "offset=-1", "limit=x", "offset=1.5", "status=gone",
                "metadata=notjson", "metadata=%5B1%5D"]:
        st, err, _ = await client.call("GET", f"/things?{bad}", token=token)
        assert st == 400 and err["error"], bad
    st, page, _ = await client.call("GET", "/things?limit=100", token=token)
    assert st == 200 and len(page["things"]) == 25


async def test_filters_with_totals(client: Client) -> None:
    _, token = await client.user()
    items: list[dict[str, Any]] = [
        {"name": "weio", "metadata": {"room": "a", "hw": {"rev": 2, "vendor": "x"}}},
        {"name": "weio", "metadata": {"room": "b", "hw": {"rev": 3, "vendor": "x"}}},
        {"name": "bob", "metadata": {"room": "a"}},
        {"name": "eve"},
    ]
    st, bulk, _ = await client.call("POST", "/things/bulk", items, token=token)
    assert st == 200
    ids = [t["id"] for t in bulk["things"]]
    await client.call("POST", f"/things/{ids[1]}/disable", token=token)

    def md(value: dict[str, Any]) -> str:
        return "metadata=" + quote(json.dumps(value))

    cases = [
        ("", [0, 2, 3]),
        ("status=all", [0, 1, 2, 3]),
        ("status=disabled", [1]),
        ("name=weio", [0]),
        ("name=weio&status=all", [0, 1]),
        ("name=%22bob%22", [2]),
        ("name=nobody", []),
        (md({"room": "a"}), [0, 2]),
        (md({"hw": {"vendor": "x"}}) + "&status=all", [0, 1]),
        (md({"hw": {"rev": 3}}) + "&status=all", [1]),
        (md({"hw": {"rev": 3}}), []),
        (md({"room": "a"}) + "&name=bob", [2]),
        (md({}), [0, 2, 3]),
    ]
    for query, expected in cases:
        st, page, _ = await client.call("GET", f"/things?{query}&limit=1", token=token)
        assert st == 200, (query, page)
        assert page["total"] == len(expected), query
        assert [t["id"] for t in page["things"]] == [ids[i] for i in expected[:1]], query


async def test_isolation_and_sharing(client: Client) -> None:
    a_id, a_tok = await client.user()
    b_id, b_tok = await client.user()
    st, thing, _ = await client.call("POST", "/things", {"name": "private"}, token=a_tok)
    tid = thing["id"]
    missing = str(uuid.uuid4())
    assert (await client.call("GET", f"/things/{tid}", token=b_tok))[0] == 404
    assert (await client.call("GET", f"/things/{missing}", token=a_tok))[0] == 404
    assert (await client.call("GET", "/things/not-a-uuid", token=a_tok))[0] == 404
    assert await total(client, b_tok, "status=all") == 0
    writes = [("PATCH", f"/things/{tid}", {"name": "hijack"}), ("PATCH", f"/things/{tid}/tags", {"tags": ["x"]}),
              ("PATCH", f"/things/{tid}/secret", {"secret": "stolen-1"}), ("POST", f"/things/{tid}/disable", None),
              ("POST", f"/things/{tid}/enable", None),
              ("POST", f"/things/{tid}/share", {"user_ids": [b_id], "actions": ["c_list"]})]
    for method, path, body in writes:
        st, _, _ = await client.call(method, path, body, token=b_tok)
        assert st == 404, (method, path, st)
    assert (await client.call("GET", "/things", token=None))[0] == 401

    st, _, _ = await client.call("POST", f"/things/{tid}/share", {"user_ids": [b_id], "actions": ["c_list"]},
                                 token=a_tok)
    assert st == 200
    # The grant is the grantee's write too: its next read sees it at once.
    st, got, _ = await client.call("GET", f"/things/{tid}", token=b_tok)
    assert st == 200 and got["name"] == "private" and got["owner"] == a_id
    st, listed, _ = await client.call("GET", "/things", token=b_tok)
    assert listed["total"] == 1 and listed["things"][0]["id"] == tid
    for method, path, body in writes:
        st, _, _ = await client.call(method, path, body, token=b_tok)
        assert st == 403, (method, path, st)
    # Upstream's shape, granting c_update.
    st, _, _ = await client.call("POST", f"/things/{tid}/share",
                                 {"group_id": str(uuid.uuid4()), "user_id": b_id, "actions": ["c_update"]},
                                 token=a_tok)
    assert st == 200
    st, upd, _ = await client.call("PATCH", f"/things/{tid}", {"name": "by b"}, token=b_tok)
    assert st == 200 and upd["name"] == "by b"
    st, _, _ = await client.call("POST", f"/things/{tid}/share", {"user_ids": [b_id], "actions": ["fly"]},
                                 token=a_tok)
    assert st == 400
    # An admin sees everything.
    _, admin, _ = await client.call("POST", "/users/tokens/issue", {"identity": ADMIN[0], "secret": ADMIN[1]})
    st, got, _ = await client.call("GET", f"/things/{tid}?x=1", token=admin["access_token"],
                                   headers={"X-Smq-After": str(0)})
    assert st == 200
    assert await total(client, admin["access_token"]) == 1


async def test_enable_disable_identify_and_secret_change(client: Client, service: Any) -> None:
    _, token = await client.user()
    st, thing, _ = await client.call("POST", "/things", {"name": "dev", "credentials": {"secret": "first-key"}},
                                     token=token)
    tid = thing["id"]
    # Read-your-writes without a user: identify right after the create.
    assert await identify(client, "first-key") == (200, {"id": tid})
    assert (await identify(client, "wrong-key"))[0] == 401
    st, _, _ = await client.call("POST", "/identify")
    assert st == 401

    for _ in range(2):
        st, body, _ = await client.call("POST", f"/things/{tid}/disable", token=token)
        assert st == 200 and body["status"] == "disabled"
    assert (await identify(client, "first-key"))[0] == 401
    assert await total(client, token) == 0 and await total(client, token, "status=disabled") == 1
    for _ in range(2):
        st, body, _ = await client.call("POST", f"/things/{tid}/enable", token=token)
        assert st == 200 and body["status"] == "enabled"
    assert await identify(client, "first-key") == (200, {"id": tid})

    st, body, _ = await client.call("PATCH", f"/things/{tid}/secret", {"secret": "second-key"}, token=token)
    assert st == 200 and body["credentials"]["secret"] == "second-key"
    assert (await identify(client, "first-key"))[0] == 401
    assert await identify(client, "second-key") == (200, {"id": tid})
    st, got, _ = await client.call("GET", f"/things/{tid}", token=token)
    assert got["credentials"]["secret"] == "second-key"

    # One event each, whatever the repeats.
    events = await service.container.store.read(0, 1000)
    kinds = [e.type for e in events if e.aggregate_id == tid]
    assert kinds == ["created", "disabled", "enabled", "secret_changed"]
    # The old secret is free again, for another thing.
    st, _, _ = await client.call("POST", "/things", {"credentials": {"secret": "first-key"}}, token=token)
    assert st == 201
    st, err, _ = await client.call("PATCH", f"/things/{tid}/secret", {"secret": "first-key"}, token=token)
    assert st == 409 and err["error"] == "secret already exists"


async def test_update_and_tags(client: Client) -> None:
    _, token = await client.user()
    st, thing, _ = await client.call("POST", "/things", {"name": "a", "tags": ["x"]}, token=token)
    assert st == 201 and thing["tags"] == ["x"]
    tid = thing["id"]
    st, body, _ = await client.call("PATCH", f"/things/{tid}", {"name": "b", "metadata": {"k": {"n": 1}}},
                                    token=token)
    assert st == 200 and body["name"] == "b" and body["metadata"] == {"k": {"n": 1}}
    st, body, _ = await client.call("PATCH", f"/things/{tid}/tags", {"tags": ["y", "z"]}, token=token)
    assert st == 200 and body["tags"] == ["y", "z"]
    st, got, _ = await client.call("GET", f"/things/{tid}", token=token)
    assert got["name"] == "b" and got["tags"] == ["y", "z"] and got["metadata"] == {"k": {"n": 1}}
    assert got["updated_at"] == body["updated_at"] and got["created_at"] == thing["created_at"]
    for path, bad in [(f"/things/{tid}", {"metadata": [1]}), (f"/things/{tid}/tags", {"tags": "x"}),
                      (f"/things/{tid}", {"name": 3})]:
        st, err, _ = await client.call("PATCH", path, bad, token=token)
        assert st == 400, (path, bad, err)
    st, got2, _ = await client.call("GET", f"/things/{tid}", token=token)
    assert got2 == got


async def test_cli_things_and_channels(client: Client, tmp_path: Any, monkeypatch: Any, capsys: Any) -> None:
    import asyncio

    from service.cli import main

    _, token = await client.user()
    monkeypatch.setenv("SMQ_URL", client.base)
    monkeypatch.setenv("SMQ_TOKEN", token)

    async def smq(*argv: str) -> Any:
        capsys.readouterr()
        code = await asyncio.to_thread(main, list(argv))  # the CLI blocks: keep the loop serving
        out = capsys.readouterr()
        assert code == 0, out.err
        return json.loads(out.out)

    csv_file = tmp_path / "things.csv"
    csv_file.write_text('name,secret,metadata\nweio,cli-secret-1,"{""room"": ""a""}"\nbob,,\n')
    bulk = await smq("things", "create", "--file", str(csv_file))
    assert bulk["total"] == 2 and bulk["things"][0]["credentials"]["secret"] == "cli-secret-1"
    assert bulk["things"][0]["metadata"] == {"room": "a"}
    json_file = tmp_path / "channels.json"
    json_file.write_text(json.dumps([{"name": "joe"}, {"name": "betty"}]))
    assert (await smq("channels", "create", "--file", str(json_file)))["total"] == 2

    one = await smq("things", "create", "solo")
    assert one["name"] == "solo"
    assert (await smq("things", "get", one["id"]))["id"] == one["id"]
    assert (await smq("things", "update", one["id"], '{"name": "renamed"}'))["name"] == "renamed"
    assert (await smq("things", "disable", one["id"]))["status"] == "disabled"
    listed = await smq("things", "list", "--metadata", '{"room": "a"}')
    assert listed["total"] == 1 and listed["things"][0]["name"] == "weio"
    assert (await smq("things", "list", "--status", "all", "--limit", "2"))["total"] == 3
    assert (await smq("channels", "list", "--name", "joe"))["total"] == 1
    # A refused batch: the error names the item, the exit code is 1.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "ok"}, {"credentials": {"secret": "cli-secret-1"}}]))
    code = await asyncio.to_thread(main, ["things", "create", "--file", str(bad)])
    assert code == 1 and "item 1: secret already exists" in capsys.readouterr().err
