"""Reads are rendered by PostgreSQL (command_api.docsql), answers to commands by Python
(thing_json and friends): both must give the same JSON, member for member and in the same
order, whatever the values hold."""

from __future__ import annotations

from typing import Any

from tests.conftest import Client

AWKWARD_NAME = 'q"uote \\ back/slash \u00e9\u4e2d\U0001f600 <&> end'
# (Not 1.25e300: jsonb keeps numbers as numeric and writes it out as 125 followed by 298
# zeros, an integer, on every read path; upstream stores metadata in jsonb too.)
AWKWARD_META: dict[str, Any] = {
    "s": AWKWARD_NAME, "ctl": "tab\t nl\n cr\r ctl\x01\x1f del\x7f", "n": None, "t": True, "f": False, "i": 12345678901234567890,
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
