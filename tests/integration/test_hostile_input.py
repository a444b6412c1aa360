"""Hostile input through HTTP: oversized and malformed bodies, limits on names and metadata,
the rate limit on token requests, CORS preflight and security headers; and every refused
request changes nothing in the store."""

from __future__ import annotations

import uuid
from typing import Any

from domain.common import MAX_METADATA_BYTES, MAX_METADATA_DEPTH
from tests.conftest import Client

SECURITY = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
            "Access-Control-Allow-Origin": "*"}


def _secure(headers: Any) -> None:
    for name, value in SECURITY.items():
        assert headers.get(name) == value, name
    assert headers.get("Strict-Transport-Security", "").startswith("max-age=")
    assert headers.get("X-Request-ID")


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


async def test_a_2mb_body_is_413_json(client: Client, service: Any) -> None:
    _, token = await client.user()
    before = await service.container.store.max_position()
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    for path in ("/things", "/users", "/users/tokens/issue"):
        st, body, headers = await client.call("POST", path, data=big, token=token,
                                              headers={"Content-Type": "application/json"})
        assert st == 413, path
        assert body == {"error": "request body too large"}
        _secure(headers)
    assert await service.container.store.max_position() == before


async def test_wrong_types_are_400_and_change_nothing(client: Client, service: Any) -> None:
    uid, token = await client.user()
    st, thing, _ = await client.call("POST", "/things", {"name": "t"}, token=token)
    assert st == 201
    tid = thing["id"]
    before = await service.container.store.max_position()
    cases: list[tuple[str, str, Any]] = [
        ("POST", "/users", {"credentials": "a@b.c", "name": "x"}),
        ("POST", "/users", {"credentials": {"identity": ["a@b.c"], "secret": "12345678"}}),
        ("POST", "/users", ["not", "an", "object"]),
        ("POST", "/users/tokens/issue", {"identity": 1, "secret": 2}),
        ("PATCH", f"/users/{uid}", {"name": 5}),
        ("PATCH", f"/users/{uid}", {"metadata": ["a"]}),
        ("PATCH", f"/users/{uid}/tags", {"tags": "a,b"}),
        ("POST", "/things", {"name": 7}),
        ("POST", "/things", {"name": "x", "metadata": "string"}),
        ("POST", "/things", [{"name": "in an array"}]),
        ("POST", "/things/bulk", {"name": "not an array"}),
        ("PATCH", f"/things/{tid}", {"name": {"a": 1}}),
        ("PATCH", f"/things/{tid}/secret", {"secret": 12345}),
        ("POST", f"/things/{tid}/share", {"user_ids": "x", "actions": ["c_list"]}),
        ("POST", "/channels", {"name": "c", "description": False}),
        ("POST", "/connect", {"channel_ids": "x", "thing_ids": [tid]}),
        ("POST", "/certs", {"thing_id": tid, "ttl": 5}),
        ("POST", "/mapping", {"external_id": 1, "external_key": 2}),
        ("POST", "/things", "just a string"),
    ]
    for method, path, body in cases:
        st, err, headers = await client.call(method, path, body, token=token)
        assert st == 400, (method, path, body, st, err)
        assert isinstance(err, dict) and isinstance(err.get("error"), str) and err["error"]
        _secure(headers)
    for raw in (b"{", b"[1,", b'{"name": "x"} trailing', b"\xff\xfe", b'{"name": "\\ud800"}', b"null", b"12"):
        st, err, _ = await client.call("POST", "/things", data=raw, token=token,
                                       headers={"Content-Type": "application/json"})
        assert st == 400, raw
    assert await service.container.store.max_position() == before


async def test_limits_on_names_and_metadata(client: Client, service: Any) -> None:
    uid, token = await client.user()
    st, thing, _ = await client.call("POST", "/things", {"name": "t"}, token=token)
    tid = thing["id"]
    before = await service.container.store.max_position()
    too_long = "n" * 1025
    too_big = {"blob": "x" * (MAX_METADATA_BYTES + 10)}
    too_deep = _nested(MAX_METADATA_DEPTH + 2)
    cases: list[tuple[str, str, Any]] = [
        ("POST", "/things", {"name": too_long}),
        ("POST", "/things", {"name": "ok", "metadata": too_big}),
        ("POST", "/things", {"name": "ok", "metadata": too_deep}),
        ("POST", "/things", {"name": "bad\x00name"}),
        ("POST", "/things/bulk", [{"name": "fine"}, {"name": too_long}]),
        ("PATCH", f"/things/{tid}", {"metadata": too_deep}),
        ("POST", "/channels", {"name": too_long}),
        ("POST", "/channels", {"name": "c", "metadata": too_big}),
        ("PATCH", f"/users/{uid}", {"name": too_long}),
        ("PATCH", f"/users/{uid}", {"metadata": too_deep}),
        ("PATCH", f"/users/{uid}", {"metadata": too_big}),
        ("POST", "/users", {"name": too_long, "credentials": {"identity": "n@example.com",
                                                              "secret": "12345678"}}),
        ("POST", "/users", {"metadata": too_deep, "credentials": {"identity": "m@example.com",
                                                                  "secret": "12345678"}}),
    ]
    for method, path, body in cases:
        st, err, _ = await client.call(method, path, body, token=token)
        assert st == 400, (method, path, st, err)
        assert err["error"]
    # Just inside the limits is fine.
    st, _, _ = await client.call("POST", "/things", {"name": "n" * 1024,
                                                     "metadata": _nested(MAX_METADATA_DEPTH - 1)},
                                 token=token)
    assert st == 201
    after = await service.container.store.max_position()
    st, page, _ = await client.call("GET", "/things?limit=100", token=token)
    assert page["total"] == 2  # "t" and the one inside the limits; nothing of the refused
    assert after > before


async def test_cors_preflight_and_headers_on_every_answer(client: Client) -> None:
    for path in ("/users", "/things/" + str(uuid.uuid4()), "/nowhere"):
        st, body, headers = await client.call(
            "OPTIONS", path, headers={"Origin": "https://app.example.com",
                                      "Access-Control-Request-Method": "POST",
                                      "Access-Control-Request-Headers": "authorization,content-type"})
        assert st == 204 and not body
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert headers["Access-Control-Allow-Methods"] == "*"
        assert "Authorization" in headers["Access-Control-Allow-Headers"]
        assert int(headers["Access-Control-Max-Age"]) > 0
        _secure(headers)
    answers = [
        await client.call("GET", "/health"),
        await client.call("GET", "/users/profile"),                       # 401
        await client.call("GET", "/nowhere"),                             # 404
        await client.call("DELETE", "/users"),                            # 405
        await client.call("POST", "/users", data=b"x", headers={"Content-Type": "text/plain"}),  # 415
        await client.call("POST", "/users", data=b"{", headers={"Content-Type": "application/json"}),
        await client.call("GET", "/metrics"),
        await client.call("GET", "/openapi.json"),
    ]
    assert [a[0] for a in answers] == [200, 401, 404, 405, 415, 400, 200, 200]
    for _, _, headers in answers:
        _secure(headers)
        assert "Location" in headers["Access-Control-Expose-Headers"]
