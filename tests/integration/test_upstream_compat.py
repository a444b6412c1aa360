"""What upstream's Go SDK and CLI send, byte for byte where it matters, and what they expect back.

The SDK (mainflux ``pkg/sdk/go`` of the guide's API: users with ``credentials``, things with
``credentials.secret``, ``POST /users/tokens/issue``) marshals whole Go structs, so bodies carry
``"id": ""``, empty ``"credentials": {}`` and zero timestamps; it sets ``Content-Type:
application/json`` on every call, bodiless ones included, and accepts only the exact statuses
it names (``errors.CheckError``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest

from infra.settings import Settings
from tests.conftest import Client

ZERO = "0001-01-01T00:00:00Z"


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Any]:
    nc = await nats.connect(settings.nats_url, connect_timeout=5)
    try:
        yield nc
    finally:
        await nc.close()


async def sdk(client: Client, method: str, path: str, body: Any = None, token: str | None = None,
              auth: str | None = None, content_type: str = "application/json") -> tuple[int, Any, Any]:
    """One request as the SDK's ``processRequest`` makes it: a JSON body (or none) and the
    Content-Type header always, ``Bearer`` unless the token is a ``Thing`` key."""
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if auth:
        headers["Authorization"] = auth
    data = b"" if body is None else json.dumps(body).encode()
    return await client.call(method, path, data=data, headers=headers)


def go_thing(**fields: Any) -> dict[str, Any]:
    """``json.Marshal(sdk.Thing{...})``: id and credentials always, zero times always."""
    return {"id": "", "credentials": {}, **fields, "created_at": ZERO, "updated_at": ZERO}


def go_channel(**fields: Any) -> dict[str, Any]:
    return {"id": "", **fields, "created_at": ZERO, "updated_at": ZERO}


async def test_sdk_users_flow(client: Client) -> None:
    user = {"id": "", "name": "John Doe", "credentials": {"identity": "john.sdk@example.com", "secret": "12345678"},
            "created_at": ZERO, "updated_at": ZERO, "status": "enabled"}
    st, created, _ = await sdk(client, "POST", "/users", user)
    assert st == 201, created
    st, tok, _ = await sdk(client, "POST", "/users/tokens/issue",
                           {"identity": "john.sdk@example.com", "secret": "12345678"})
    assert st == 201 and set(tok) >= {"access_token", "refresh_token", "access_type"}, tok
    st, again, _ = await sdk(client, "POST", "/users/tokens/refresh", token=tok["refresh_token"])
    assert st == 201 and again["access_token"], again
    token = tok["access_token"]
    st, page, _ = await sdk(client, "GET", "/users?limit=10&visibility=all&owner=x&tag=t&email=e", token=token)
    assert st == 200 and {"total", "offset", "limit", "users"} <= set(page), page
    st, prof, _ = await sdk(client, "GET", "/users/profile", token=token)
    assert st == 200 and prof["id"] == created["id"]
    st, got, _ = await sdk(client, "GET", f"/users/{created['id']}", token=token)
    assert st == 200
    upd = {"id": created["id"], "name": "new name", "credentials": {}, "metadata": {"k": "v"},
           "created_at": ZERO, "updated_at": ZERO}
    st, got, _ = await sdk(client, "PATCH", f"/users/{created['id']}", upd, token=token)
    assert st == 200 and got["name"] == "new name", got
    st, got, _ = await sdk(client, "PATCH", f"/users/{created['id']}/tags",
                           {"id": created["id"], "credentials": {}, "tags": ["a"], "created_at": ZERO,
                            "updated_at": ZERO}, token=token)
    assert st == 200 and got["tags"] == ["a"], got
    st, got, _ = await sdk(client, "PATCH", "/users/secret", {"old_secret": "12345678", "new_secret": "87654321"},
                           token=token)
    assert st == 200, got
    # A new secret ends the tokens issued before it: the SDK logs in again.
    assert (await sdk(client, "GET", "/users/profile", token=token))[0] == 401
    st, tok, _ = await sdk(client, "POST", "/users/tokens/issue",
                           {"identity": created["credentials"]["identity"], "secret": "87654321"})
    assert st == 201, tok
    token = tok["access_token"]
    st, got, _ = await sdk(client, "POST", f"/users/{created['id']}/disable", token=token)
    assert st == 200 and got["status"] == "disabled", got


async def test_sdk_things_and_channels(client: Client) -> None:
    _, token = await client.user()
    st, thing, _ = await sdk(client, "POST", "/things", go_thing(name="weio"), token=token)
    assert st == 201, thing
    st, bulk, _ = await sdk(client, "POST", "/things/bulk", [go_thing(name="a"), go_thing(name="b")], token=token)
    assert st == 200 and len(bulk["things"]) == 2, bulk
    st, page, _ = await sdk(client, "GET", "/things?limit=10&visibility=all&tag=x&owner=y&shared_by=z",
                            token=token)
    assert st == 200 and page["total"] == 3 and page["offset"] == 0 and page["limit"] == 10, page
    tid = thing["id"]
    st, got, _ = await sdk(client, "GET", f"/things/{tid}", token=token)
    assert st == 200
    st, got, _ = await sdk(client, "PATCH", f"/things/{tid}", go_thing(id=tid, name="w2", metadata={"a": 1}),
                           token=token)
    assert st == 200 and got["name"] == "w2", got
    st, got, _ = await sdk(client, "PATCH", f"/things/{tid}/tags", go_thing(id=tid, tags=["t"]), token=token)
    assert st == 200 and got["tags"] == ["t"], got
    st, got, _ = await sdk(client, "PATCH", f"/things/{tid}/secret", {"secret": "sdk-secret-1"}, token=token)
    assert st == 200 and got["credentials"]["secret"] == "sdk-secret-1", got
    st, got, _ = await sdk(client, "POST", "/identify", auth="Thing sdk-secret-1")
    assert st == 200 and got == {"id": tid}, got

    st, ch, _ = await sdk(client, "POST", "/channels", go_channel(name="c"), token=token)
    assert st == 201, ch
    st, chs, _ = await sdk(client, "POST", "/channels/bulk", [go_channel(name="d")], token=token)
    assert st == 200 and len(chs["channels"]) == 1, chs
    cid = ch["id"]
    st, got, _ = await sdk(client, "PUT", f"/channels/{cid}", go_channel(id=cid, name="c2"), token=token)
    assert st == 200 and got["name"] == "c2", got
    st, got, _ = await sdk(client, "GET", "/channels?limit=10&visibility=all", token=token)
    assert st == 200 and got["total"] == 2, got

    # ConnectThing: POST with the JSON content type and no body at all.
    st, got, _ = await sdk(client, "POST", f"/channels/{cid}/things/{tid}", token=token)
    assert st == 201, got
    st, got, _ = await sdk(client, "GET", f"/channels/{cid}/things?limit=10", token=token)
    assert st == 200 and got["total"] == 1
    st, got, _ = await sdk(client, "GET", f"/things/{tid}/channels?limit=10", token=token)
    assert st == 200 and got["total"] == 1
    st, got, _ = await sdk(client, "POST", f"/channels/{cid}/access",
                           {"secret": "sdk-secret-1", "group_id": cid, "action": "m_write", "entity_type": "group"})
    assert st == 200, got
    st, got, _ = await sdk(client, "DELETE", f"/channels/{cid}/things/{tid}", token=token)
    assert st == 204, got
    conns = {"group_ids": [cid], "client_ids": [tid]}
    st, got, _ = await sdk(client, "POST", "/connect", conns, token=token)
    assert st == 201, got
    st, got, _ = await sdk(client, "POST", "/disconnect", conns, token=token)
    assert st == 204, got
    for ent, eid in (("things", tid), ("channels", cid)):
        st, got, _ = await sdk(client, "POST", f"/{ent}/{eid}/disable", token=token)
        assert st == 200 and got["status"] == "disabled", got
        st, got, _ = await sdk(client, "POST", f"/{ent}/{eid}/enable", token=token)
        assert st == 200 and got["status"] == "enabled", got


async def test_sdk_bootstrap_and_certs(client: Client) -> None:
    _, token = await client.user()
    st, chs, _ = await sdk(client, "POST", "/channels/bulk", [go_channel(name="x")], token=token)
    cid = chs["channels"][0]["id"]
    cfg = {"channels": [cid], "external_id": "ext-sdk-1", "external_key": "key-sdk-1", "name": "gw",
           "content": "{}"}
    st, _, headers = await sdk(client, "POST", "/things/configs", cfg, token=token)
    assert st == 201
    tid = headers["Location"].removeprefix("/things/configs/")
    st, got, _ = await sdk(client, "GET", f"/things/configs/{tid}", token=token)
    assert st == 200 and got["mainflux_id"] == tid, got
    st, got, _ = await sdk(client, "GET", "/things/configs?limit=10&state=0", token=token)
    assert st == 200 and got["total"] == 1, got
    st, got, _ = await sdk(client, "PUT", f"/things/configs/{tid}",
                           {"mainflux_id": tid, "external_id": "ext-sdk-1", "name": "gw2", "content": "{\"a\":1}"},
                           token=token)
    assert st == 200, got
    st, got, _ = await sdk(client, "PATCH", f"/things/configs/certs/{tid}",
                           {"client_cert": "c", "client_key": "k", "ca_cert": "a"}, token=token)
    assert st == 200, got
    st, got, _ = await sdk(client, "PUT", f"/things/configs/connections/{tid}", {"channels": [cid]}, token=token)
    assert st == 200, got
    st, got, _ = await sdk(client, "PUT", f"/things/state/{tid}", {"state": 1}, token=token)
    assert st in (200, 201), got
    # Whitelist(cfg{State: 0}) marshals ``state,omitempty``: the body is {}.
    st, got, _ = await sdk(client, "PUT", f"/things/state/{tid}", {}, token=token)
    assert st in (200, 201), got
    st, got, _ = await sdk(client, "GET", "/things/bootstrap/ext-sdk-1", auth="Thing key-sdk-1")
    assert st == 200 and got["mainflux_id"] == tid, got

    st, cert, _ = await sdk(client, "POST", "/certs", {"thing_id": tid, "key_bits": 0, "key_type": "",
                                                       "encryption": "", "ttl": "24h"}, token=token)
    assert st == 201 and cert["cert_serial"], cert
    st, got, _ = await sdk(client, "GET", f"/certs/{cert['cert_serial']}", token=token)
    assert st == 200, got
    st, got, _ = await sdk(client, "GET", f"/serials/{tid}", token=token)
    assert st == 200 and got["serials"] == [cert["cert_serial"]], got
    st, got, _ = await sdk(client, "DELETE", f"/certs/{tid}", token=token)
    assert st == 200 and got["revocation_time"], got
    st, got, _ = await sdk(client, "DELETE", f"/things/configs/{tid}", token=token)
    assert st == 204, got


async def test_sdk_send_message(client: Client) -> None:
    _, token = await client.user()
    st, thing, _ = await sdk(client, "POST", "/things", go_thing(name="m"), token=token)
    st, ch, _ = await sdk(client, "POST", "/channels", go_channel(name="m"), token=token)
    st, _, _ = await sdk(client, "POST", f"/channels/{ch['id']}/things/{thing['id']}", token=token)
    assert st == 201
    key = thing["credentials"]["secret"]
    msg = [{"bn": "x:", "n": "v", "v": 1}]
    for ct in ("application/json", "application/senml+json", "application/octet-stream"):
        st, got, _ = await sdk(client, "POST", f"/http/channels/{ch['id']}/messages", msg, auth=f"Thing {key}",
                               content_type=ct)
        assert st == 202, (ct, got)
    st, got, _ = await sdk(client, "POST", f"/http/channels/{ch['id']}/messages/a/b", msg, auth=f"Thing {key}")
    assert st == 202, got


async def test_sdk_identify_with_token_in_body(client: Client) -> None:
    """The guide's SDK ``IdentifyThing`` posts ``{"token": <key>}`` with no Authorization header."""
    _, token = await client.user()
    st, thing, _ = await sdk(client, "POST", "/things", go_thing(name="i", credentials={"secret": "body-key-1"}),
                             token=token)
    assert st == 201, thing
    st, got, _ = await sdk(client, "POST", "/identify", {"token": "body-key-1"})
    assert st == 200 and got == {"id": thing["id"]}, got
    assert (await sdk(client, "POST", "/identify", {"token": "wrong-key"}))[0] == 401
    assert (await sdk(client, "POST", "/identify", {"token": ""}))[0] == 401
    assert (await sdk(client, "POST", "/identify"))[0] == 401
    assert (await sdk(client, "POST", "/identify", "not a secret", content_type="text/plain"))[0] == 401
    # A header, when present, decides: a user's bearer token is not a thing key.
    assert (await sdk(client, "POST", "/identify", {"token": "body-key-1"}, token=token))[0] == 401


async def test_sdk_update_thing_secret_on_key_path(client: Client) -> None:
    """The guide's SDK ``UpdateThingSecret`` sends ``PATCH /things/{id}/key``."""
    _, token = await client.user()
    st, thing, _ = await sdk(client, "POST", "/things", go_thing(name="k"), token=token)
    st, got, _ = await sdk(client, "PATCH", f"/things/{thing['id']}/key", {"secret": "key-path-secret"}, token=token)
    assert st == 200 and got["credentials"]["secret"] == "key-path-secret", got
    st, got, _ = await sdk(client, "POST", "/identify", auth="Thing key-path-secret")
    assert st == 200 and got == {"id": thing["id"]}


async def test_sdk_whitelist_off_sends_empty_body(client: Client) -> None:
    """``Whitelist(cfg{State: 0})`` marshals ``state,omitempty`` to ``{}``: that is state 0."""
    _, token = await client.user()
    st, _, headers = await sdk(client, "POST", "/things/configs",
                               {"external_id": "wl-ext-1", "external_key": "wl-key-1"}, token=token)
    assert st == 201
    tid = headers["Location"].removeprefix("/things/configs/")
    st, got, _ = await sdk(client, "PUT", f"/things/state/{tid}", {"state": 1}, token=token)
    assert st == 200 and got["state"] == 1, got
    st, got, _ = await sdk(client, "PUT", f"/things/state/{tid}", {}, token=token)
    assert st == 200 and got["state"] == 0, got
    assert (await sdk(client, "PUT", f"/things/state/{tid}", {"state": None}, token=token))[0] == 400
    assert (await sdk(client, "PUT", f"/things/state/{tid}", {"state": 2}, token=token))[0] == 400


async def test_sdk_send_message_to_adapter_path(client: Client, bus: Any, settings: Settings) -> None:
    """With the HTTP adapter URL set to the base URL itself, the SDK posts to
    ``/channels/{id}/messages[/subtopic]``: the same publish as under ``/http``."""
    _, token = await client.user()
    st, thing, _ = await sdk(client, "POST", "/things", go_thing(name="m"), token=token)
    st, ch, _ = await sdk(client, "POST", "/channels", go_channel(name="m"), token=token)
    assert (await sdk(client, "POST", f"/channels/{ch['id']}/things/{thing['id']}", token=token))[0] == 201
    key = thing["credentials"]["secret"]
    sub = await bus.subscribe(f"{settings.messages_subject}.{ch['id']}.messages.>")
    await bus.flush()
    st, got, _ = await sdk(client, "POST", f"/channels/{ch['id']}/messages/a/b", [{"n": "v", "v": 1}],
                           auth=f"Thing {key}", content_type="application/senml+json")
    assert st == 202, got
    msg = await sub.next_msg(timeout=5)
    assert msg.subject == f"{settings.messages_subject}.{ch['id']}.messages.a.b" and json.loads(msg.data) == [{"n": "v", "v": 1}]
    st, _, _ = await sdk(client, "POST", f"/channels/{ch['id']}/messages", [], auth=f"Thing {key}")
    assert st == 202
    assert (await sdk(client, "POST", f"/channels/{ch['id']}/messages", [], auth="Thing wrong"))[0] == 401


async def test_slashes_redirect_and_access_answers_as_the_sdk_decodes(client: Client) -> None:
    _, token = await client.user()
    st, body, headers = await client.call("GET", "//things/", token=token, allow_redirects=False)
    assert st == 308 and headers["Location"].split("?")[0] == "/things", (st, body)
    st, page, _ = await client.call("GET", "/things/", token=token)  # followed
    assert st == 200 and page["total"] == 0
    _, thing, _ = await client.call("POST", "/things", {"name": "t", "credentials": {"secret": "acc-s"}}, token=token)
    _, ch, _ = await client.call("POST", "/channels", {"name": "c"}, token=token)
    await client.call("PUT", f"/channels/{ch['id']}/things/{thing['id']}", token=token)
    st, ok, _ = await client.call("POST", f"/channels/{ch['id']}/access", {"secret": "acc-s", "action": "m_write"})
    assert st == 200 and ok == {"id": thing["id"], "thing_id": thing["id"], "authorized": True}
