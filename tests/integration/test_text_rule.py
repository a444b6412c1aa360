"""The text rule at the boundary: a NUL, a lone surrogate, invalid UTF-8 and a control
character in any string of any body are a 400 naming the field, and store nothing; a PEM
keeps its line breaks; deep nesting is refused before anything recurses."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from tests.conftest import Client

MARK = "\ue000"  # stands for the bad text in a body, replaced in its encoded bytes
BAD: dict[str, bytes] = {
    "nul": b"\\u0000",
    "lone surrogate": b"\\ud800",
    "invalid utf-8": b"\xff\xfe",
    "control character": b"\\u0007",
}
JSON = {"Content-Type": "application/json"}

Ids = dict[str, str]
# (method, path as /openapi.json writes it) -> (body with MARK in one string, the field named)
CASES: dict[tuple[str, str], tuple[Callable[[Ids], Any], str]] = {
    ("POST", "/users"): (lambda i: {"name": "n", "credentials": {"identity": f"a{MARK}@b.co",
                                                                "secret": "12345678"}},
                         "credentials.identity"),
    ("POST", "/users/tokens/issue"): (lambda i: {"identity": f"{MARK}a@b.co", "secret": "12345678"},
                                      "identity"),
    ("PATCH", "/users/secret"): (lambda i: {"old_secret": "12345678", "new_secret": f"abcdefgh{MARK}"},
                                 "new_secret"),
    ("PATCH", "/users/{id}"): (lambda i: {"metadata": {"a": {f"k{MARK}": 1}}}, "a key of metadata.a"),
    ("PATCH", "/users/{id}/tags"): (lambda i: {"tags": ["a", f"b{MARK}"]}, "tags[1]"),
    ("POST", "/things"): (lambda i: {"name": f"t{MARK}"}, "name"),
    ("POST", "/things/bulk"): (lambda i: [{"name": "ok"}, {"name": "t", "metadata": {"k": f"v{MARK}"}}],
                               "[1].metadata.k"),
    ("PATCH", "/things/{id}"): (lambda i: {"metadata": {"k": ["x", f"v{MARK}"]}}, "metadata.k[1]"),
    ("PATCH", "/things/{id}/tags"): (lambda i: {"tags": [MARK]}, "tags[0]"),
    ("PATCH", "/things/{id}/secret"): (lambda i: {"secret": f"s{MARK}"}, "secret"),
    ("PATCH", "/things/{id}/key"): (lambda i: {"secret": f"s{MARK}"}, "secret"),
    ("POST", "/things/{id}/share"): (lambda i: {"user_ids": [MARK], "actions": ["c_list"]}, "user_ids[0]"),
    ("POST", "/channels"): (lambda i: {"name": "c", "description": f"d{MARK}"}, "description"),
    ("POST", "/channels/bulk"): (lambda i: [{"name": f"c{MARK}"}], "[0].name"),
    ("PUT", "/channels/{id}"): (lambda i: {"name": f"c{MARK}"}, "name"),
    ("PATCH", "/channels/{id}"): (lambda i: {"metadata": {f"{MARK}": "v"}}, "a key of metadata"),
    ("POST", "/channels/{id}/share"): (lambda i: {"user_ids": [i["user"]], "actions": [f"c{MARK}"]},
                                       "actions[0]"),
    ("PUT", "/channels/{cid}/things/{tid}"): (lambda i: {"actions": [f"m{MARK}"]}, "actions[0]"),
    ("POST", "/channels/{cid}/things/{tid}"): (lambda i: {"actions": [f"m{MARK}"]}, "actions[0]"),
    ("POST", "/connect"): (lambda i: {"channel_ids": [i["cid"]], "thing_ids": [MARK]}, "thing_ids[0]"),
    ("POST", "/disconnect"): (lambda i: {"channel_ids": [i["cid"]], "thing_ids": [MARK]}, "thing_ids[0]"),
    ("POST", "/channels/{cid}/access"): (lambda i: {"secret": f"s{MARK}", "action": "publish"}, "secret"),
    ("POST", "/identify"): (lambda i: {"token": f"s{MARK}"}, "token"),
    ("POST", "/policies"): (lambda i: {"subject": MARK, "object": i["cid"], "actions": ["g_add"]}, "subject"),
    ("POST", "/mapping"): (lambda i: {"external_id": f"e{MARK}", "external_key": "k", "name": "gw"},
                           "external_id"),
    ("POST", "/certs"): (lambda i: {"thing_id": MARK, "ttl": "1h"}, "thing_id"),
    ("POST", "/things/configs"): (lambda i: {"external_id": "x", "external_key": "k", "name": "n",
                                             "content": f"line\n{MARK}"}, "content"),
    ("PUT", "/things/configs/{id}"): (lambda i: {"name": f"n{MARK}", "content": ""}, "name"),
    ("PATCH", "/things/configs/certs/{id}"): (lambda i: {"client_cert": f"-----\n{MARK}", "client_key": "", "ca_cert": ""},
                                             "client_cert"),
    ("PUT", "/things/configs/connections/{id}"): (lambda i: {"channels": [MARK]}, "channels[0]"),
    ("PUT", "/things/state/{id}"): (lambda i: {"state": MARK}, "state"),
}
# Routes with a body that holds no text: its bytes are a message, not a document.
NOT_JSON = {("POST", "/channels/{cid}/messages"), ("POST", "/http/channels/{cid}/messages"),
            ("POST", "/channels/{cid}/messages/{subtopic}"),
            ("POST", "/http/channels/{cid}/messages/{subtopic}")}


def _with(body: Any, bad: bytes) -> bytes:
    return msgspec.json.encode(body).replace(MARK.encode(), bad)


def _path(template: str, ids: Ids) -> str:
    return template.format(id=ids["thing"], cid=ids["cid"], tid=ids["thing"])


async def _setup(client: Client) -> tuple[str, Ids]:
    uid, token = await client.user()
    other, _ = await client.user()
    st, thing, _ = await client.call("POST", "/things", {"name": "t"}, token=token)
    assert st == 201, thing
    st, chan, _ = await client.call("POST", "/channels", {"name": "c"}, token=token)
    assert st == 201, chan
    st, cfg, _ = await client.call("POST", "/things/configs",
                                   {"thing_id": thing["id"], "external_id": f"e-{uuid.uuid4()}",
                                    "external_key": "k"}, token=token)
    assert st == 201, cfg
    return token, {"thing": thing["id"], "cid": chan["id"], "user": other, "me": uid}


async def test_bad_text_in_any_body_is_400_naming_the_field_and_stores_nothing(
        client: Client, service: Any) -> None:
    token, ids = await _setup(client)
    st, doc, _ = await client.call("GET", "/openapi.json")
    assert st == 200
    with_body = {(m.upper(), p) for p, ops in doc["paths"].items() for m, op in ops.items()
                 if "requestBody" in op}
    assert with_body - NOT_JSON <= set(CASES), sorted(with_body - NOT_JSON - set(CASES))
    store = service.container.store
    before = await store.max_position()
    for (method, template), (make, field) in CASES.items():
        path = _path(template.replace("/users/{id}", f"/users/{ids['me']}"), ids)
        for kind, bad in BAD.items():
            bearer = None if template == "/identify" else token  # its secret is in the body
            st, err, headers = await client.call(method, path, data=_with(make(ids), bad), token=bearer,
                                                 headers=JSON)
            assert st == 400, (method, path, kind, st, err)
            assert isinstance(err, dict) and field in err["error"], (method, path, kind, err)
            assert headers["Content-Type"].startswith("application/json")
    assert await store.max_position() == before  # nothing stored by any of them

    # A normal write right after is readable at once.
    st, _, _ = await client.call("PATCH", f"/things/{ids['thing']}", {"name": "after", "metadata": {"k": "v"}},
                                 token=token)
    assert st == 200
    st, got, _ = await client.call("GET", f"/things/{ids['thing']}", token=token)
    assert st == 200 and got["name"] == "after" and got["metadata"] == {"k": "v"}


async def test_invalid_utf8_and_deep_nesting_without_a_token_are_400(client: Client, service: Any) -> None:
    before = await service.container.store.max_position()
    deep = b'{"name": "n", "credentials": {"identity": "d@e.co", "secret": "12345678"}, "metadata": ' \
        + b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"}"
    deep_list = b'{"identity": ' + b"[" * 10_000 + b"]" * 10_000 + b', "secret": "12345678"}'
    for path, body in (("/users", b'{"name":"\xff", "credentials": {"identity": "x@y.co", "secret": "12345678"}}'),
                       ("/users/tokens/issue", b'{"identity":"\xff@y.co", "secret": "12345678"}'),
                       ("/users", deep), ("/users/tokens/issue", deep_list)):
        st, err, headers = await client.call("POST", path, data=body, headers=JSON)
        assert st == 400, (path, st, err)
        assert isinstance(err, dict) and err["error"], err
        assert headers["Content-Type"].startswith("application/json")
    _, token = await client.user()
    st, err, _ = await client.call("POST", "/things", data=deep, headers=JSON, token=token)
    assert st == 400 and "nested deeper" in err["error"], err
    st, err, _ = await client.call("GET", "/things?metadata=" + "%5B" * 2000, token=token)
    assert st == 400, err
    assert await service.container.store.max_position() == before + 2  # the user made above


async def test_bootstrap_content_keeps_its_line_breaks_and_tabs(client: Client) -> None:
    _, token = await client.user()
    content = '{\n\t"agent": {"log": "info"}\r\n}'
    st, cfg, _ = await client.call("POST", "/things/configs", {"external_id": f"e-{uuid.uuid4()}",
                                                               "external_key": "k", "content": content},
                                   token=token)
    assert st == 201, cfg
    st, got, _ = await client.call("GET", f"/things/configs/{cfg['mainflux_id']}", token=token)
    assert st == 200 and got["content"] == content
    st, err, _ = await client.call("PUT", f"/things/configs/{cfg['mainflux_id']}",
                                   {"name": "a\tb", "content": ""}, token=token)
    assert st == 400 and "name" in err["error"]  # a name is no document


async def test_a_real_pem_is_taken_and_read_back_intact(client: Client) -> None:
    _, token = await client.user()
    st, ca_pem, _ = await client.call("GET", "/certs/ca")
    assert st == 200
    ca = ca_pem.decode() if isinstance(ca_pem, bytes) else ca_pem
    assert "\n" in ca.strip()
    st, thing, _ = await client.call("POST", "/things", {"name": "gw", "credentials": {"secret": "gw-key-1"}},
                                     token=token)
    assert st == 201, thing
    st, issued, _ = await client.call("POST", "/certs", {"thing_id": thing["id"], "ttl": "1h"}, token=token)
    assert st == 201, issued
    crlf_key = issued["client_key"].replace("\n", "\r\n")  # a PEM written on Windows
    ext = f"e-{uuid.uuid4()}"
    st, cfg, _ = await client.call("POST", "/things/configs",
                                   {"external_id": ext, "external_key": "k", "name": "gw",
                                    "client_cert": issued["client_cert"], "client_key": crlf_key,
                                    "ca_cert": ca}, token=token)
    assert st == 201, cfg
    tid = cfg["mainflux_id"]
    st, boot, _ = await client.call("GET", f"/things/bootstrap/{ext}", headers={"Authorization": "Thing k"})
    assert st == 200, boot
    assert (boot["client_cert"], boot["client_key"], boot["ca_cert"]) == (issued["client_cert"], crlf_key, ca)

    st, again, _ = await client.call("POST", "/certs", {"thing_id": thing["id"], "ttl": "2h"}, token=token)
    assert st == 201, again
    st, body, _ = await client.call("PATCH", f"/things/configs/certs/{tid}",
                                    {"client_cert": again["client_cert"], "client_key": again["client_key"],
                                     "ca_cert": ca}, token=token)
    assert st == 200, body
    st, boot, _ = await client.call("GET", f"/things/bootstrap/{ext}", headers={"Authorization": "Thing k"})
    assert st == 200 and (boot["client_cert"], boot["client_key"], boot["ca_cert"]) == (
        again["client_cert"], again["client_key"], ca)
