"""Credentials on the bus: sealed for any subscriber, opened by the projector for the views;
the embedded NATS refuses whoever lacks its generated password."""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg

from infra import bus
from infra.embedded import Embedded
from infra.settings import Settings
from projections.envelope import decode
from projections.sealing import is_sealed
from service.runtime import Service, redact
from tests.conftest import Client, eventually


async def test_credentials_never_travel_readable_on_the_bus(client: Client, service: Any,
                                                             settings: Settings) -> None:
    seen: list[Msg] = []
    nc = await nats.connect(settings.nats_url, connect_timeout=5)

    async def got(msg: Msg) -> None:
        seen.append(msg)

    await nc.subscribe(f"{settings.events_subject}.>", cb=got)
    c = service.container
    c.provision = replace(c.provision, layout=replace(c.provision.layout, x509=True))
    tag = secrets.token_hex(6)
    secret, new_secret = f"thing-secret-{tag}", f"new-thing-secret-{tag}"
    ext_key, client_key = f"external-key-{tag}", f"client-private-key-{tag}"
    patched_key, map_key = f"patched-private-key-{tag}", f"mapping-key-{tag}"
    try:
        _, token = await client.user()
        st, thing, _ = await client.call("POST", "/things", {"name": "t", "credentials": {"secret": secret}},
                                         token=token)
        assert st == 201, thing
        tid = thing["id"]
        st, _, _ = await client.call("PATCH", f"/things/{tid}/secret", {"secret": new_secret}, token=token)
        assert st == 200
        st, cfg, _ = await client.call("POST", "/things/configs", {
            "external_id": f"gw-{tag}", "external_key": ext_key, "client_cert": "CERT",
            "client_key": client_key, "ca_cert": "CA"}, token=token)
        assert st == 201, cfg
        gw = cfg["mainflux_id"]
        st, _, _ = await client.call("PATCH", f"/things/configs/certs/{gw}", {
            "client_cert": "CERT2", "client_key": patched_key, "ca_cert": "CA2"}, token=token)
        assert st == 200
        st, issued, _ = await client.call("POST", "/certs", {"thing_id": tid, "ttl": "1h"}, token=token)
        assert st == 201, issued
        st, mapped, _ = await client.call("POST", "/mapping", {"external_id": f"map-{tag}", "external_key": map_key},
                                          token=token)
        assert st == 201, mapped
        mapped_key = mapped["client_key"][mapped["things"][0]["id"]]
        assert "PRIVATE KEY" in mapped_key  # the CA's key, through the saga

        # The views still work: each reads or hashes what the projector opened.
        st, who, _ = await client.call("POST", "/identify", headers={"Authorization": f"Thing {new_secret}"})
        assert (st, who) == (200, {"id": tid})
        st, _, _ = await client.call("POST", "/identify", headers={"Authorization": f"Thing {secret}"})
        assert st in (401, 403, 404)
        st, got_thing, _ = await client.call("GET", f"/things/{tid}", token=token)
        assert got_thing["credentials"]["secret"] == new_secret
        st, boot, _ = await client.call("GET", f"/things/bootstrap/gw-{tag}",
                                        headers={"Authorization": f"Thing {ext_key}"})
        assert st == 200 and boot["client_key"] == patched_key, boot
        st, boot, _ = await client.call("GET", f"/things/bootstrap/map-{tag}",
                                        headers={"Authorization": f"Thing {map_key}"})
        assert st == 200 and boot["client_key"] == mapped_key

        wanted = {"thing.created", "thing.secret_changed", "config.created", "config.certs_updated",
                  "provisioning.started", "unique_key.claimed", "cert_book.issued"}

        async def all_seen() -> bool:
            return wanted <= {m.subject.split(".", 2)[2] for m in seen}
        await eventually(all_seen, what=f"events {sorted(wanted)} on the bus")
    finally:
        await nc.close()

    pem_lines = [line for line in (issued["client_key"] + mapped_key).splitlines()
                 if line and "-----" not in line]
    texts = [secret, new_secret, ext_key, client_key, patched_key, map_key, *pem_lines]
    for msg in seen:
        for text in texts:
            assert text.encode() not in msg.data, (msg.subject, text)
    # A trusted consumer with the bus key opens them; every credential field came sealed.
    sealer = c.store.sealer
    opened: set[str] = set()
    for msg in seen:
        raw = decode(msg.data).data
        for field in ("secret", "external_key", "client_key", "key"):
            if field in raw:
                assert is_sealed(raw[field]), f"{msg.subject}: {field} travels in the clear"
        opened |= {v for v in decode(msg.data, sealer).data.values() if isinstance(v, str)}
    assert {secret, new_secret, ext_key, client_key, patched_key, map_key, mapped_key} <= opened


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


async def test_the_embedded_nats_refuses_a_connection_without_its_password(tmp_path: Path) -> None:
    emb = Embedded()
    try:
        url = emb.start_nats(tmp_path)
        password = (tmp_path / "nats.password").read_text().strip()
        assert stat.S_IMODE(os.stat(tmp_path / "nats.password").st_mode) == 0o600
        assert stat.S_IMODE(os.stat(tmp_path / "run" / "nats.conf").st_mode) == 0o600
        assert password in url and password not in redact(url)
        [(_, proc)] = emb.procs
        assert password.encode() not in _cmdline(proc.pid)  # what `ps` shows
        bare = "nats://" + url.rsplit("@", 1)[1]
        with pytest.raises(Exception, match="Authorization Violation"):  # asked of the auth callout
            # (MQTT's authorizer), which nobody answers here: refused after its 2 s timeout
            await nats.connect(bare, connect_timeout=6, allow_reconnect=False, max_reconnect_attempts=0)
        with pytest.raises(Exception, match="Authorization Violation"):
            await nats.connect(bare.replace("nats://", "nats://smq:wrong@"), connect_timeout=2,
                               allow_reconnect=False, max_reconnect_attempts=0)
        nc = await bus.connect(url, "test")  # JetStream works for the holder
        try:
            js = nc.jetstream()
            await bus.ensure_stream(js, "CHECK", "check")
            assert (await js.publish("check.one", b"x")).seq == 1
        finally:
            await nc.close()
    finally:
        emb.stop()


async def test_the_service_works_over_the_embedded_nats_without_showing_its_password(settings: Settings) -> None:
    import aiohttp

    svc = await Service.start(replace(settings, nats_url=None))
    try:
        password = (Path(settings.data_dir) / "nats.password").read_text().strip()
        assert password not in str(svc.describe()) and "***" in svc.describe()["nats"]
        async with aiohttp.ClientSession() as session:
            client = Client(session, svc.url)
            _, token = await client.user()
            st, thing, _ = await client.call("POST", "/things", {"credentials": {"secret": "embedded-1"}}, token=token)
            assert st == 201
            st, who, _ = await client.call("POST", "/identify", headers={"Authorization": "Thing embedded-1"})
            assert (st, who) == (200, {"id": thing["id"]})
    finally:
        await svc.stop()
