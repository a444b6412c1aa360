"""Hostile queries, paths and headers: each is a clear 4xx in the API's JSON shape with the
security headers (never a 5xx, a redirect elsewhere or a free wait), and none changes the store."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.conftest import ADMIN, Client
from tests.integration.test_hostile_input import _secure

BIG = 2**63  # one past PostgreSQL's bigint
NUL_OBJECT = "%7B%22%5Cu0000%22%3A1%7D"  # {"\u0000":1}
NUL_VALUE = "%7B%22a%22%3A%22%5Cu0000%22%7D"  # {"a":"\u0000"}
# {"a": [[[…]]]}, 1,200 arrays deep: msgspec's own recursion gives up before that.
DEEP = "%7B%22a%22%3A" + "[" * 1200 + "]" * 1200 + "%7D"


def _insecure(headers: Any) -> str:
    try:
        _secure(headers)
    except AssertionError as exc:
        return f"security headers missing ({exc})"
    return ""


async def _token(client: Client, identity: str, secret: str) -> str:
    st, tok, _ = await client.call("POST", "/users/tokens/issue", {"identity": identity, "secret": secret})
    assert st == 201, tok
    return tok["access_token"]


async def _world(client: Client) -> dict[str, Any]:
    uid, token = await client.user()
    _, other = await client.user()
    st, thing, _ = await client.call("POST", "/things", {"name": "t"}, token=token)
    st, channel, _ = await client.call("POST", "/channels", {"name": "c"}, token=token)
    st, foreign, _ = await client.call("POST", "/things", {"name": "theirs"}, token=other)
    st, _, _ = await client.call("POST", "/things/configs", {"external_id": "ext-h", "external_key": "key-h",
                                                             "thing_id": thing["id"]}, token=token)
    assert st == 201
    st, cert, _ = await client.call("POST", "/certs", {"thing_id": thing["id"], "ttl": "1h"}, token=token)
    assert st == 201
    return {"uid": uid, "token": token, "tid": thing["id"], "cid": channel["id"], "foreign": foreign["id"],
            "serial": cert["cert_serial"], "admin": await _token(client, *ADMIN)}


async def test_hostile_queries_and_paths_are_4xx_and_change_nothing(client: Client, service: Any) -> None:
    w = await _world(client)
    tid, cid, unknown = w["tid"], w["cid"], str(uuid.uuid4())
    thing_key = {"Authorization": "Thing key-h"}
    # (method, path, body, headers, admin?, status, words the error must hold)
    cases: list[tuple[str, str, Any, dict[str, str], bool, int, str]] = [
        # offsets past a bigint (and past any list)
        ("GET", f"/things?offset={BIG - 1}", None, {}, False, 400, "offset"),
        ("GET", f"/channels?offset={BIG - 1}", None, {}, False, 400, "offset"),
        ("GET", f"/things?offset={BIG}", None, {}, False, 400, "offset"),
        ("GET", f"/users?offset={BIG}", None, {}, False, 400, "offset"),
        ("GET", f"/users?offset={BIG}", None, {}, True, 400, "offset"),
        ("GET", f"/things/configs?offset={BIG}", None, {}, False, 400, "offset"),
        ("GET", f"/policies?offset={BIG}", None, {}, False, 400, "offset"),
        ("GET", f"/serials/{tid}?offset={BIG}", None, {}, False, 400, "offset"),
        ("GET", f"/things/{tid}/channels?offset={BIG}", None, {}, False, 400, "offset"),
        ("GET", f"/channels/{cid}/things?offset={BIG}", None, {}, False, 400, "offset"),
        ("GET", "/things?offset=" + "9" * 5000, None, {}, False, 400, "offset"),
        ("GET", "/events?after=" + "9" * 5000, None, {}, True, 400, "after"),
        # only ASCII digits are numbers
        ("GET", "/things?limit=%205", None, {}, False, 400, "limit"),
        ("GET", "/things?limit=5%20", None, {}, False, 400, "limit"),
        ("GET", "/things?limit=\u0663", None, {}, False, 400, "limit"),
        ("GET", "/things?offset=\u0663", None, {}, False, 400, "offset"),
        ("GET", "/things?limit=1_0", None, {}, False, 400, "limit"),
        ("GET", "/things?limit=%2B5", None, {}, False, 400, "limit"),
        ("GET", "/events?limit=%205", None, {}, True, 400, "limit"),
        # NUL in a query parameter or a path
        ("GET", "/things?name=%00", None, {}, False, 400, "name"),
        ("GET", "/channels?name=a%00b", None, {}, False, 400, "name"),
        ("GET", "/users?name=%00", None, {}, True, 400, "name"),
        ("GET", "/users?identity=%00", None, {}, True, 400, "identity"),
        ("GET", "/things/configs?name=%00", None, {}, False, 400, "name"),
        ("GET", "/events?type=%00", None, {}, True, 400, "type"),
        ("GET", f"/things?metadata={NUL_OBJECT}", None, {}, False, 400, "metadata"),
        ("GET", f"/things?metadata={NUL_VALUE}", None, {}, False, 400, "metadata"),
        ("GET", f"/channels?metadata={NUL_OBJECT}", None, {}, False, 400, "metadata"),
        ("GET", f"/users?metadata={NUL_OBJECT}", None, {}, True, 400, "metadata"),
        ("GET", f"/things?metadata={DEEP}", None, {}, False, 400, "metadata"),
        ("GET", "/things/bootstrap/%00", None, thing_key, False, 400, "NUL"),
        ("GET", "/things/bootstrap/ext%00h", None, thing_key, False, 400, "NUL"),
        ("GET", "/things/bootstrap/secure/%00", None, thing_key, False, 400, "NUL"),
        ("POST", f"/http/channels/{cid}/messages/a%00b", {"v": 1}, thing_key, False, 400, "NUL"),
        # a UUID-shaped serial is a serial, not a DELETE /certs/{thing_id}
        ("GET", f"/certs/{unknown}", None, {}, False, 404, "certificate"),
        # a body without what the operation needs
        ("PUT", f"/things/configs/connections/{tid}", {}, {}, False, 400, "channels"),
        ("PATCH", f"/things/configs/certs/{tid}", {}, {}, False, 400, "client_cert"),
        ("PATCH", f"/things/configs/certs/{tid}", {"client_cert": "c", "client_key": "k"}, {}, False, 400,
         "ca_cert"),
        # someone else's thing, an unknown one, an unknown config
        ("GET", f"/serials/{w['foreign']}", None, {}, False, 404, "not found"),
        ("GET", f"/serials/{unknown}", None, {}, False, 404, "not found"),
        ("GET", f"/serials/{unknown}", None, {}, True, 404, "not found"),
        ("DELETE", f"/things/configs/{unknown}", None, {}, False, 404, "config not found"),
        # one stray character is no route (no redirect to one)
        ("GET", f"/things/{tid}x", None, {}, False, 404, "not found"),
        ("GET", "/thingsX", None, {}, False, 404, "not found"),
        ("POST", "/thingsX", {"name": "x"}, {}, False, 404, "not found"),
        ("GET", f"/channels/{cid}/", None, {}, False, 308, ""),
        # a position the store has not reached: refused at once, not waited for
        ("GET", "/things", None, {"X-Smq-After": "999999999999"}, False, 400, "X-Smq-After"),
        ("GET", f"/things/{tid}", None, {"X-Smq-After": "999999999999"}, False, 400, "X-Smq-After"),
        ("GET", "/things", None, {"X-Smq-After": "1_0"}, False, 400, "X-Smq-After"),
        ("GET", "/things", None, {"X-Smq-After": "-1"}, False, 400, "X-Smq-After"),
    ]
    before = await service.container.store.max_position()
    wrong = []
    for method, path, body, headers, admin, status, words in cases:
        started = time.monotonic()
        st, err, got = await client.call(method, path, body, token=w["admin" if admin else "token"],
                                         headers=headers, allow_redirects=False)
        took = time.monotonic() - started
        if st != status:
            problem = f"{st}, not {status}"
        elif status == 308 and got.get("Location") != path.rstrip("/"):
            problem = f"to {got.get('Location')}"
        elif status != 308 and not (isinstance(err, dict) and words in err.get("error", "")):
            problem = f"the error does not say {words!r}"
        elif took >= service.settings.rw_wait:  # held for the read-your-writes bound (10 s here)
            problem = f"took {took:.1f}s"
        else:
            problem = _insecure(got)
        if problem:
            wrong.append(f"{method} {path[:70]} {headers}: {problem}: {str(err)[:100]}")
    assert not wrong, "\n".join(wrong)
    assert await service.container.store.max_position() == before
    # What the refused ones mean still works.
    st, page, _ = await client.call("GET", "/things?offset=3&limit=5&name=t&metadata={}", token=w["token"])
    assert st == 200 and page["offset"] == 3 and page["limit"] == 5
    st, got, _ = await client.call("GET", f"/certs/{w['serial']}", token=w["token"])
    assert st == 200 and got["cert_serial"] == w["serial"]
    st, got, _ = await client.call("GET", f"/serials/{tid}", token=w["token"])
    assert st == 200 and got["serials"] == [w["serial"]]
    st, _, _ = await client.call("GET", "/things", token=w["token"], headers={"X-Smq-After": str(before)})
    assert st == 200
    assert (await client.call("DELETE", f"/things/configs/{tid}", token=w["token"]))[0] == 204
    assert (await client.call("DELETE", f"/things/configs/{tid}", token=w["token"]))[0] == 404


async def test_a_single_create_names_the_field_without_bulk_wording(client: Client) -> None:
    _, token = await client.user()
    for path in ("/things", "/channels"):
        st, err, _ = await client.call("POST", path, {"name": 5}, token=token)
        assert (st, err) == (400, {"error": "name must be a string"}), (path, err)
        st, err, _ = await client.call("POST", f"{path}/bulk", [{"name": "ok"}, {"name": 5}], token=token)
        assert (st, err) == (400, {"error": "item 1: name must be a string"}), (path, err)
    cid = str(uuid.uuid4())
    assert (await client.call("POST", "/channels", {"id": cid, "name": "a"}, token=token))[0] == 201
    st, err, _ = await client.call("POST", "/channels", {"id": cid, "name": "b"}, token=token)
    assert (st, err) == (409, {"error": "channel id already exists"})


async def test_missing_fields_blank_nothing(client: Client) -> None:
    """Config certificates and channels are updated only by a body that names them."""
    _, token = await client.user()
    st, ch, _ = await client.call("POST", "/channels", {"name": "c"}, token=token)
    st, _, headers = await client.call("POST", "/things/configs", {
        "external_id": "ext-m", "external_key": "key-m", "channels": [ch["id"]],
        "client_cert": "CERT", "client_key": "KEY", "ca_cert": "CA"}, token=token)
    assert st == 201
    tid = headers["Location"].removeprefix("/things/configs/")
    assert (await client.call("PATCH", f"/things/configs/certs/{tid}", {}, token=token))[0] == 400
    assert (await client.call("PUT", f"/things/configs/connections/{tid}", {}, token=token))[0] == 400
    st, got, _ = await client.call("GET", "/things/bootstrap/ext-m", headers={"Authorization": "Thing key-m"})
    assert st == 200, got
    assert (got["client_cert"], got["client_key"], got["ca_cert"]) == ("CERT", "KEY", "CA")
    assert [c["id"] for c in got["mainflux_channels"]] == [ch["id"]]
    # What upstream's SDK sends is still taken: all three certificates, channels (null: none).
    st, got, _ = await client.call("PATCH", f"/things/configs/certs/{tid}",
                                   {"client_cert": "C2", "client_key": "", "ca_cert": "A2"}, token=token)
    assert st == 200 and got.get("client_cert") == "C2" and "client_key" not in got, got
    st, got, _ = await client.call("PUT", f"/things/configs/connections/{tid}", {"channels": None}, token=token)
    assert st == 200 and got["mainflux_channels"] == [], got


async def test_oversized_url_and_headers_are_json_errors(client: Client) -> None:
    _, token = await client.user()
    long_value = "q" * 9000
    st, err, headers = await client.call("GET", f"/things?name={long_value}", token=token)
    assert st == 414, (st, err)
    assert err == {"error": "the URL is longer than 8190 bytes"}
    assert headers["Content-Type"].startswith("application/json")
    _secure(headers)
    st, err, headers = await client.call("GET", "/things", token=token, headers={"X-Big": long_value})
    assert st == 431 and err == {"error": "a request header is longer than 8190 bytes"}, (st, err)
    _secure(headers)
    # The server still answers afterwards, and URLs just under the limit are fine.
    st, page, _ = await client.call("GET", "/things?name=" + "n" * 1000, token=token)
    assert st == 200 and page["total"] == 0


async def test_an_authorization_header_that_is_not_text_is_refused_not_a_500(service: Any) -> None:
    """Invalid UTF-8 in ``Authorization`` (aiohttp passes it on as lone surrogates, which no
    hash can encode) is a refused credential on every secret check, never a 500."""
    import asyncio

    host, port = "127.0.0.1", service.port
    cid = str(uuid.uuid4())
    for method, path, body in (("POST", f"/channels/{cid}/messages", b"{}"),
                               ("GET", "/things/bootstrap/gw-x", b""),
                               ("POST", "/identify", b""),
                               ("GET", "/things", b"")):
        for header in (b"Thing ab\xff\xfe", b"ab\xff\xfe", b"Bearer \xc3\x28"):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n".encode()
                         + b"Authorization: " + header + b"\r\n\r\n" + body)
            await writer.drain()
            status_line = await reader.readline()
            writer.close()
            status = int(status_line.split()[1])
            assert 400 <= status < 500, (method, path, header, status_line)
