"""Bootstrap configurations and the gateway's fetch, through the real store, bus and views."""

from __future__ import annotations

import json
from typing import Any

from infra import crypto
from tests.conftest import Client


async def _channels(client: Client, token: str, n: int = 2) -> list[str]:
    st, body, _ = await client.call("POST", "/channels/bulk", [{"name": f"ch{i}", "metadata": {"type": f"t{i}"}}
                                                               for i in range(n)], token=token)
    assert st == 200, body
    return [c["id"] for c in body["channels"]]


async def _totals(client: Client, token: str) -> tuple[int, int]:
    _, things, _ = await client.call("GET", "/things?status=all", token=token)
    _, configs, _ = await client.call("GET", "/things/configs", token=token)
    return things["total"], configs["total"]


async def test_add_and_fetch_by_external_id_and_key(client: Client) -> None:
    _, token = await client.user()
    chans = await _channels(client, token)
    body = {"external_id": "33:52:77:99:43", "external_key": "223334fw2", "name": "gw",
            "channels": chans, "content": json.dumps({"agent": {"log": {"level": "info"}}})}
    st, cfg, headers = await client.call("POST", "/things/configs", body, token=token)
    assert st == 201, cfg
    tid = cfg["mainflux_id"]
    assert headers["Location"] == f"/things/configs/{tid}"
    st, thing, _ = await client.call("GET", f"/things/{tid}", token=token)
    assert st == 200 and thing["name"] == "gw"  # the thing was created with the config

    # The gateway, with no user token, right after the write.
    st, boot, _ = await client.call("GET", "/things/bootstrap/33:52:77:99:43",
                                    headers={"Authorization": "Thing 223334fw2"})
    assert st == 200, boot
    assert boot["mainflux_id"] == tid and boot["mainflux_key"] == thing["credentials"]["secret"]
    assert [c["id"] for c in boot["mainflux_channels"]] == chans
    assert boot["mainflux_channels"][0]["name"] == "ch0"
    assert json.loads(boot["content"]) == {"agent": {"log": {"level": "info"}}}

    st, err, _ = await client.call("GET", "/things/bootstrap/33:52:77:99:43")
    assert st == 401 and err["error"]
    st, err, _ = await client.call("GET", "/things/bootstrap/33:52:77:99:43",
                                   headers={"Authorization": "Thing wrong-key"})
    assert st == 403 and "223334fw2" not in str(err)
    st, _, _ = await client.call("GET", "/things/bootstrap/nobody", headers={"Authorization": "Thing x"})
    assert st == 404

    st, got, _ = await client.call("GET", f"/things/configs/{tid}", token=token)
    assert st == 200 and got["external_id"] == "33:52:77:99:43" and got["state"] == 0
    _, other = await client.user()
    assert (await client.call("GET", f"/things/configs/{tid}", token=other))[0] == 404
    assert (await client.call("PUT", f"/things/configs/{tid}", {"name": "x", "content": ""}, token=other))[0] == 404
    st, listed, _ = await client.call("GET", "/things/configs", token=other)
    assert st == 200 and listed["total"] == 0


async def test_bad_and_conflicting_configs_change_nothing(client: Client) -> None:
    _, token = await client.user()
    ok = {"external_id": "gw-1", "external_key": "k1"}
    assert (await client.call("POST", "/things/configs", ok, token=token))[0] == 201
    before = await _totals(client, token)
    for bad, status in [({"external_key": "k"}, 400), ({"external_id": "gw-2"}, 400),
                        ({"external_id": "", "external_key": "k"}, 400),
                        ({"external_id": "gw-2", "external_key": "k", "channels": ["nope"]}, 400),
                        ({"external_id": "gw-2", "external_key": "k",
                          "channels": ["5ec1beb9-1b76-47e6-a9ef-baf9e4ae5820"]}, 404),
                        ({"external_id": "gw-1", "external_key": "k2"}, 409)]:
        st, err, _ = await client.call("POST", "/things/configs", bad, token=token)
        assert st == status, (bad, err)
        assert err["error"]
    assert await _totals(client, token) == before
    st, _, _ = await client.call("POST", "/things/configs", data=b"{", token=token,
                                 headers={"Content-Type": "application/json"})
    assert st == 400


async def test_state_connects_and_disconnects_the_config_channels(client: Client) -> None:
    _, token = await client.user()
    chans = await _channels(client, token)
    st, cfg, _ = await client.call("POST", "/things/configs", {"external_id": "gw-s", "external_key": "k",
                                                               "channels": chans}, token=token)
    tid = cfg["mainflux_id"]

    async def connected() -> list[str]:
        st, page, _ = await client.call("GET", f"/things/{tid}/channels", token=token)
        assert st == 200, page
        return sorted(c["id"] for c in page["channels"])

    assert await connected() == []
    for _ in range(2):  # repeating is a no-op
        st, body, _ = await client.call("PUT", f"/things/state/{tid}", {"state": 1}, token=token)
        assert st == 200 and body["state"] == 1
        assert await connected() == sorted(chans)
    st, _, _ = await client.call("PUT", f"/things/state/{tid}", {"state": 0}, token=token)
    assert st == 200
    assert await connected() == []
    assert (await client.call("PUT", f"/things/state/{tid}", {"state": 2}, token=token))[0] == 400

    # Active again, then the config's channels change: the connections follow.
    await client.call("PUT", f"/things/state/{tid}", {"state": 1}, token=token)
    st, _, _ = await client.call("PUT", f"/things/configs/connections/{tid}", {"channels": chans[:1]}, token=token)
    assert st == 200
    assert await connected() == chans[:1]
    # Removing the config disconnects the thing and frees the external id.
    assert (await client.call("DELETE", f"/things/configs/{tid}", token=token))[0] == 204
    assert await connected() == []
    assert (await client.call("GET", "/things/bootstrap/gw-s", headers={"Authorization": "Thing k"}))[0] == 404
    assert (await client.call("POST", "/things/configs", {"external_id": "gw-s", "external_key": "k"},
                              token=token))[0] == 201


async def test_update_content_and_certs(client: Client) -> None:
    _, token = await client.user()
    st, cfg, _ = await client.call("POST", "/things/configs", {"external_id": "gw-u", "external_key": "k"},
                                   token=token)
    tid = cfg["mainflux_id"]
    st, _, _ = await client.call("PUT", f"/things/configs/{tid}", {"name": "n2", "content": "c2"}, token=token)
    assert st == 200
    st, _, _ = await client.call("PATCH", f"/things/configs/certs/{tid}",
                                 {"client_cert": "CERT", "client_key": "KEY", "ca_cert": "CA"}, token=token)
    assert st == 200
    st, boot, _ = await client.call("GET", "/things/bootstrap/gw-u", headers={"Authorization": "Thing k"})
    assert st == 200 and boot["content"] == "c2"
    assert (boot["client_cert"], boot["client_key"], boot["ca_cert"]) == ("CERT", "KEY", "CA")


async def test_secure_bootstrap_is_encrypted_both_ways(client: Client, service: Any) -> None:
    _, token = await client.user()
    await client.call("POST", "/things/configs", {"external_id": "gw-x", "external_key": "sekrit",
                                                  "content": "hello"}, token=token)
    key = service.container.bootstrap_key
    enc_key = crypto.encrypt(key, b"sekrit").hex()
    st, raw, headers = await client.call("GET", "/things/bootstrap/secure/gw-x",
                                         headers={"Authorization": f"Thing {enc_key}"})
    assert st == 200 and headers["Content-Type"] == "application/octet-stream"
    assert isinstance(raw, bytes) and b"hello" not in raw
    assert json.loads(crypto.decrypt(key, raw))["content"] == "hello"
    wrong = crypto.encrypt(key, b"other").hex()
    assert (await client.call("GET", "/things/bootstrap/secure/gw-x",
                              headers={"Authorization": f"Thing {wrong}"}))[0] == 403
    assert (await client.call("GET", "/things/bootstrap/secure/gw-x",
                              headers={"Authorization": "Thing not-hex"}))[0] == 403


async def test_the_agent_fetches_with_a_bare_key_and_always_gets_json_content(client: Client) -> None:
    """Agent versions differ: some send the bare external key, some ``Thing <key>``; either way
    the answer's ``content`` is JSON text the Agent can parse, even for a config without one."""
    _, token = await client.user()
    st, cfg, _ = await client.call("POST", "/things/configs",
                                   {"external_id": "gw-bare", "external_key": "bare-key-1"}, token=token)
    assert st == 201, cfg
    for header in ("bare-key-1", "Thing bare-key-1", "thing bare-key-1"):
        st, boot, _ = await client.call("GET", "/things/bootstrap/gw-bare", headers={"Authorization": header})
        assert st == 200, (header, boot)
        assert boot["mainflux_id"] == cfg["mainflux_id"]
        assert json.loads(boot["content"]) == {}, boot  # present, and JSON
    st, err, _ = await client.call("GET", "/things/bootstrap/gw-bare", headers={"Authorization": "bare-key-2"})
    assert st == 403 and "bare-key" not in str(err)
