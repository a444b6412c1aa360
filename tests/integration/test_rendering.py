"""Reads are rendered by PostgreSQL (command_api.docsql), answers to commands by Python
(thing_json and friends): both must give the same JSON, member for member and in the same
order, whatever the values hold."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.conftest import ADMIN, Client

AWKWARD_NAME = 'q"uote \\ back/slash \u00e9\u4e2d\U0001f600 <&> end'
# (Not 1.25e300: jsonb keeps numbers as numeric and writes it out as 125 followed by 298
# zeros, an integer, on every read path; upstream stores metadata in jsonb too.)
AWKWARD_META: dict[str, Any] = {
    "s": AWKWARD_NAME, "ctl": "no control characters (the text rule): sep\u2029 zw\u200b bom\ufeff", "n": None, "t": True, "f": False, "i": 12345678901234567890,
    "neg": -7, "x": 1.5, "tiny": 1e-7, "empty": {}, "list": [1, "two", [3], {"4": None}],
    "nested": {"deep": {"deeper": ["\u2028", ""]}}, "": "empty key",
}


def assert_same(read: dict[str, Any], answered: dict[str, Any]) -> None:
    assert read == answered
    assert list(read) == list(answered)  # the members' order too


async def test_thing_rendered_by_sql_equals_the_command_answer(client: Client) -> None:
    _, token = await client.user()
    st, plain, _ = await client.call("POST", "/things", {"name": ""}, token=token)
    assert st == 201, plain
    st, rich, _ = await client.call("POST", "/things", {"name": AWKWARD_NAME, "tags": ["a", "\u00e9", "q\"t"],
                                                        "metadata": AWKWARD_META}, token=token)
    assert st == 201, rich
    assert rich["metadata"] == AWKWARD_META and rich["name"] == AWKWARD_NAME
    st, ch, _ = await client.call("POST", "/channels", {"name": "c"}, token=token)
    assert st == 201, ch
    for thing in (plain, rich):
        st, got, _ = await client.call("GET", f"/things/{thing['id']}", token=token)
        assert st == 200
        assert_same(got, thing)
        st, _, _ = await client.call("PUT", f"/channels/{ch['id']}/things/{thing['id']}", token=token)
        assert st in (200, 201)
    st, listed, _ = await client.call("GET", "/things?limit=100", token=token)
    assert st == 200 and listed["total"] == 2
    assert list(listed) == ["limit", "offset", "total", "things"]
    for read, answered in zip(listed["things"], (plain, rich), strict=True):
        assert_same(read, answered)
    st, of_channel, _ = await client.call("GET", f"/channels/{ch['id']}/things", token=token)
    assert st == 200 and of_channel["total"] == 2
    for read, answered in zip(of_channel["things"], (plain, rich), strict=True):
        assert_same(read, answered)
    # A filter on the awkward metadata finds it, rendered the same.
    st, found, _ = await client.call("GET", "/things?metadata=%7B%22t%22%3Atrue%7D", token=token)
    assert st == 200 and found["total"] == 1
    assert_same(found["things"][0], rich)
    # An offset: only the page's rows are rendered, the right ones.
    st, second, _ = await client.call("GET", "/things?limit=1&offset=1", token=token)
    assert st == 200 and second["total"] == 2 and second["limit"] == 1 and second["offset"] == 1
    assert len(second["things"]) == 1
    assert_same(second["things"][0], rich)
    st, beyond, _ = await client.call("GET", "/things?offset=5", token=token)
    assert st == 200 and beyond["total"] == 2 and beyond["things"] == []
    # The channels of a thing.
    st, of_thing, _ = await client.call("GET", f"/things/{rich['id']}/channels", token=token)
    assert st == 200 and of_thing["total"] == 1
    assert_same(of_thing["channels"][0], ch)
    # Shared with another user, in that user's list; and in the administrator's.
    other_id, other = await client.user()
    st, _, _ = await client.call("POST", f"/things/{rich['id']}/share",
                                 {"user_ids": [other_id], "actions": ["c_list"]}, token=token)
    assert st == 200
    st, shared, _ = await client.call("GET", f"/things/{rich['id']}", token=token)  # updated_at moved
    assert st == 200 and shared["updated_at"] > rich["updated_at"]
    st, theirs, _ = await client.call("GET", "/things", token=other)
    assert st == 200 and theirs["total"] == 1
    assert_same(theirs["things"][0], shared)
    _, admin, _ = await client.call("POST", "/users/tokens/issue", {"identity": ADMIN[0], "secret": ADMIN[1]})
    by_meta = quote(json.dumps({"s": AWKWARD_NAME}))
    st, everyone, _ = await client.call("GET", f"/things?limit=100&metadata={by_meta}", token=admin["access_token"])
    assert st == 200 and everyone["total"] >= 1
    assert_same(next(t for t in everyone["things"] if t["id"] == rich["id"]), shared)


async def test_channel_and_user_rendered_by_sql_equal_the_command_answers(client: Client) -> None:
    identity = "render@example.com"
    st, user, _ = await client.call("POST", "/users", {"name": AWKWARD_NAME, "metadata": AWKWARD_META,
                                                       "tags": ["x"], "credentials": {"identity": identity,
                                                                                      "secret": "12345678"}})
    assert st == 201, user
    st, tok, _ = await client.call("POST", "/users/tokens/issue", {"identity": identity, "secret": "12345678"})
    token = tok["access_token"]
    st, profile, _ = await client.call("GET", "/users/profile", token=token)
    assert st == 200
    assert_same(profile, user)
    st, mine, _ = await client.call("GET", "/users", token=token)
    assert st == 200 and mine["total"] == 1
    assert_same(mine["users"][0], user)
    _, admin, _ = await client.call("POST", "/users/tokens/issue", {"identity": ADMIN[0], "secret": ADMIN[1]})
    st, found, _ = await client.call("GET", f"/users?identity={identity}", token=admin["access_token"])
    assert st == 200 and found["total"] == 1
    assert_same(found["users"][0], user)
    st, plain, _ = await client.call("POST", "/channels", {"name": "p"}, token=token)
    st2, rich, _ = await client.call("POST", "/channels", {"name": AWKWARD_NAME, "description": AWKWARD_NAME,
                                                          "metadata": AWKWARD_META}, token=token)
    assert st == st2 == 201, (plain, rich)
    assert "description" not in plain and "metadata" not in plain
    for ch in (plain, rich):
        st, got, _ = await client.call("GET", f"/channels/{ch['id']}", token=token)
        assert st == 200
        assert_same(got, ch)
    st, listed, _ = await client.call("GET", "/channels", token=token)
    assert st == 200 and listed["total"] == 2
    for read, answered in zip(listed["channels"], (plain, rich), strict=True):
        assert_same(read, answered)
