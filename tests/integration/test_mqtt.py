# ruff: noqa: F811 - the fixtures of tests/integration/mqttkit.py are imported, then asked for by name
"""MQTT through NATS's own listener, authorized by the service (the auth callout), with a real
MQTT client (aiomqtt) against the session's embedded nats-server 2.15: who may connect, publish
and subscribe where, and that HTTP, MQTT and NATS messages meet."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import nats
import pytest

from infra.mqtt import address
from infra.settings import Settings
from projections.access import SessionRecord
from projections.access_scripts import SESSIONS_KEPT
from tests.conftest import Client, eventually
from tests.integration.mqttkit import api, device, mqtt_service  # noqa: F401 - fixtures
from workers.thingaccess import thing_access

pytestmark = pytest.mark.timeout(120)






async def made(api: Client, token: str, thing_secret: str, links: dict[str, list[str]]) -> str:
    """A thing with ``thing_secret`` connected to existing channels with those actions."""
    st, thing, _ = await api.call("POST", "/things", {"name": "dev", "credentials": {"secret": thing_secret}},
                                  token=token)
    assert st == 201, thing
    for cid, actions in links.items():
        st, body, _ = await api.call("PUT", f"/channels/{cid}/things/{thing['id']}", {"actions": actions},
                                     token=token)
        assert st == 201, body
    return str(thing["id"])


async def channel(api: Client, token: str) -> str:
    st, ch, _ = await api.call("POST", "/channels", {"name": "ch"}, token=token)
    assert st == 201, ch
    return str(ch["id"])


async def next_message(c: aiomqtt.Client, bound: float = 5.0) -> aiomqtt.Message:
    async with asyncio.timeout(bound):
        async for msg in c.messages:
            return msg
    raise AssertionError("no message")


async def test_things_connect_publish_and_subscribe_where_connected(
        api: Client, mqtt_settings: Settings, mqtt_service: Any) -> None:
    _, token = await api.user()
    c1, c2, c3 = [await channel(api, token) for _ in range(3)]
    a = await made(api, token, "secret-a-1", {c1: ["m_read", "m_write"]})
    b = await made(api, token, "secret-b-1", {c1: ["m_read"], c3: ["m_write"]})
    bus = await nats.connect(mqtt_settings.nats_url, connect_timeout=5)
    seen = await bus.subscribe("channels.>")  # the service's account: everything, in order
    await bus.flush()
    try:
        # Wrong secret, or an id that is not the secret's thing: refused at connect.
        for user, password in ((a, "wrong-secret"), (b, "secret-a-1"), ("", "secret-a-1")):
            with pytest.raises(aiomqtt.MqttError):
                async with device(mqtt_settings, user, password):
                    pass
        async with device(mqtt_settings, a, "secret-a-1") as dev_a, \
                device(mqtt_settings, b, "secret-b-1") as dev_b:
            # Subscribing where not connected (or not for m_read) fails; where connected works.
            assert [int(getattr(q, "value", q)) for q in await dev_a.subscribe(f"channels/{c2}/messages/#")] == [0x80]
            assert [int(getattr(q, "value", q)) for q in await dev_b.subscribe(f"channels/{c3}/messages")] == [0x80]
            await dev_a.subscribe(f"channels/{c1}/messages/req/#")
            await dev_b.subscribe(f"channels/{c1}/messages/#")

            # A command over HTTP reaches the device on channels/<cid>/messages/req.
            st, _, _ = await api.call("POST", f"/http/channels/{c1}/messages/req", data=b'{"cmd":1}',
                                      headers={"Authorization": "Thing secret-a-1"})
            assert st == 202
            got = await next_message(dev_a)
            assert (str(got.topic), got.payload) == (f"channels/{c1}/messages/req", b'{"cmd":1}')
            assert (await next_message(dev_b)).payload == b'{"cmd":1}'
            http = await seen.next_msg(timeout=5)
            assert http.subject == f"channels.{c1}.messages.req" and http.headers["Smq-Publisher"] == a

            # Its answer over MQTT reaches NATS (naming the thing) and the other MQTT subscriber.
            await dev_a.publish(f"channels/{c1}/messages/res", b"ok", qos=1)
            msg = await seen.next_msg(timeout=5)
            assert (msg.subject, msg.data) == (f"channels.{c1}.messages.res", b"ok")
            assert json.loads(msg.headers["Nats-Request-Info"])["user"] == a
            got = await next_message(dev_b)
            assert (str(got.topic), got.payload) == (f"channels/{c1}/messages/res", b"ok")

            # Publishing where not connected, or on an m_read connection, never arrives: the
            # broker drops it (MQTT 3.1.1 cannot say so); what the same client publishes next
            # where it may arrives first.
            await dev_a.publish(f"channels/{c2}/messages", b"nope-a", qos=1)
            await dev_a.publish(f"channels/{c1}/messages", b"marker-a", qos=1)
            assert (await seen.next_msg(timeout=5)).data == b"marker-a"
            await dev_b.publish(f"channels/{c1}/messages", b"nope-b", qos=1)
            await dev_b.publish(f"channels/{c3}/messages", b"marker-b", qos=1)
            assert (await seen.next_msg(timeout=5)).data == b"marker-b"
            got = await next_message(dev_b)  # dev_b's own subscription saw marker-a only
            assert got.payload == b"marker-a"
            with pytest.raises(TimeoutError):
                await next_message(dev_b, 0.3)
    finally:
        await bus.close()


async def test_health_metrics_and_the_address_line(api: Client, mqtt_service: Any, mqtt_settings: Settings) -> None:
    st, health, _ = await api.call("GET", "/health")
    assert st == 200, health
    assert health["checks"]["mqtt_broker"] == "pass" and health["checks"]["mqtt_authorizer"] == "pass"
    assert mqtt_service.describe()["mqtt"] == mqtt_settings.mqtt_url

    def count(text: str, outcome: str) -> float:
        line = [x for x in text.splitlines() if x.startswith(f'smq_mqtt_auth_total{{outcome="{outcome}"}}')]
        return float(line[0].split()[-1]) if line else 0.0

    async def metrics() -> str:
        _, body, _ = await api.call("GET", "/metrics")
        return body.decode() if isinstance(body, bytes) else str(body)

    before = await metrics()
    _, token = await api.user()
    thing = await made(api, token, "secret-m-1", {})
    async with device(mqtt_settings, thing, "secret-m-1"):
        pass
    with pytest.raises(aiomqtt.MqttError):
        async with device(mqtt_settings, thing, "not-it"):
            pass
    after = await metrics()
    assert count(after, "allowed") == count(before, "allowed") + 1
    assert count(after, "refused_credentials") == count(before, "refused_credentials") + 1

    # No authorizer subscribed: /health names it (503).
    await mqtt_service.authorizer.stop()
    try:
        async def failing() -> bool:
            st, body, _ = await api.call("GET", "/health")
            return st == 503 and "no authorizer" in body["checks"]["mqtt_authorizer"]

        await eventually(failing, what="/health naming the authorizer")
    finally:
        await mqtt_service.authorizer.start()


async def test_mqtt_is_off_without_its_settings(client: Client) -> None:
    """The machine's NATS without MQTT settings: /health says MQTT authorization is off and
    stays 200."""
    st, health, _ = await client.call("GET", "/health")
    assert st == 200, health
    assert health["checks"]["mqtt_authorizer"].startswith("off: MQTT authorization is not configured")


async def closed_within(dev: aiomqtt.Client, bound: float) -> float:
    """Seconds until the broker closes ``dev``'s session (it reads nothing meanwhile)."""
    start = asyncio.get_running_loop().time()
    async with asyncio.timeout(bound):
        with pytest.raises(aiomqtt.MqttError):
            async for msg in dev.messages:
                raise AssertionError(f"a message after the revocation: {msg.payload!r}")
    return asyncio.get_running_loop().time() - start


@asynccontextmanager
async def session(settings: Settings, username: str, password: str, topic: str) -> AsyncIterator[aiomqtt.Client]:
    """A device subscribed to ``topic``, whose session the test expects the broker to close."""
    cm = device(settings, username, password)
    dev = await cm.__aenter__()
    try:
        granted = await dev.subscribe(topic)
        assert [int(getattr(q, "value", q)) for q in granted] == [0], granted
        yield dev
    finally:
        with contextlib.suppress(aiomqtt.MqttError, OSError):
            await cm.__aexit__(None, None, None)


async def test_a_revocation_closes_open_sessions_within_the_bound(
        api: Client, mqtt_settings: Settings, mqtt_service: Any) -> None:
    """A disconnect, a changed secret, a disabled thing or channel: the open session is closed
    (it stops receiving and cannot publish) within the read-your-writes bound, and the thing's
    next connect is decided on the new state."""
    bound = mqtt_settings.rw_wait
    _, token = await api.user()
    c1 = await channel(api, token)
    a = await made(api, token, "rev-a-1", {c1: ["m_read", "m_write"]})
    topic = f"channels/{c1}/messages/#"

    # Disconnected: closed; reconnecting works but the channel is refused.
    async with session(mqtt_settings, a, "rev-a-1", topic) as dev:
        st, _, _ = await api.call("DELETE", f"/channels/{c1}/things/{a}", token=token)
        assert st == 204
        assert await closed_within(dev, bound) < bound
        with pytest.raises(aiomqtt.MqttError):
            await dev.publish(f"channels/{c1}/messages", b"after", qos=1)
    async with device(mqtt_settings, a, "rev-a-1") as dev:
        assert [int(getattr(q, "value", q)) for q in await dev.subscribe(topic)] == [0x80]
    await api.call("PUT", f"/channels/{c1}/things/{a}", token=token)

    # A new secret: closed; the old one is refused, the new one admitted.
    async with session(mqtt_settings, a, "rev-a-1", topic) as dev:
        st, _, _ = await api.call("PATCH", f"/things/{a}/secret", {"secret": "rev-a-2"}, token=token)
        assert st == 200
        assert await closed_within(dev, bound) < bound
    with pytest.raises(aiomqtt.MqttError):
        async with device(mqtt_settings, a, "rev-a-1"):
            pass

    # The channel disabled: closed; reconnecting, the channel is refused; enabled again: it works.
    async with session(mqtt_settings, a, "rev-a-2", topic) as dev:
        st, _, _ = await api.call("POST", f"/channels/{c1}/disable", token=token)
        assert st == 200
        assert await closed_within(dev, bound) < bound
    async with device(mqtt_settings, a, "rev-a-2") as dev:
        assert [int(getattr(q, "value", q)) for q in await dev.subscribe(topic)] == [0x80]
    await api.call("POST", f"/channels/{c1}/enable", token=token)

    # The thing disabled: closed, and refused at the next connect.
    async with session(mqtt_settings, a, "rev-a-2", topic) as dev:
        st, _, _ = await api.call("POST", f"/things/{a}/disable", token=token)
        assert st == 200
        assert await closed_within(dev, bound) < bound
    with pytest.raises(aiomqtt.MqttError):
        async with device(mqtt_settings, a, "rev-a-2"):
            pass


async def test_a_revocation_that_cannot_kick_is_said_and_done_at_the_next(
        api: Client, mqtt_service: Any, mqtt_settings: Settings) -> None:
    """A KICK the server does not answer: /health fails ``mqtt_authorizer`` naming the revoker,
    /metrics counts it, and the session stays recorded; once KICKs work again, the thing's next
    revocation closes it and /health passes again (no restart)."""
    bound = mqtt_settings.rw_wait
    _, token = await api.user()
    c1 = await channel(api, token)
    a = await made(api, token, "unkicked-1", {c1: ["m_read"]})
    revoker, nc = mqtt_service.revoker, mqtt_service.container.nc
    real = revoker.sys_nc
    silent = await nc.subscribe("$SYS.REQ.SERVER.*.KICK")  # in the service's account: never answers
    async with session(mqtt_settings, a, "unkicked-1", f"channels/{c1}/messages/#") as dev:
        revoker.sys_nc = nc
        try:
            st, _, _ = await api.call("DELETE", f"/channels/{c1}/things/{a}", token=token)
            assert st == 204

            async def said() -> bool:
                st, body, _ = await api.call("GET", "/health")
                return st == 503 and "revoker: KICK of" in body["checks"]["mqtt_authorizer"]

            await eventually(said, 15, "the revoker's failure in /health")
            _, metrics_text, _ = await api.call("GET", "/metrics")
            text = metrics_text.decode() if isinstance(metrics_text, bytes) else str(metrics_text)
            assert 'smq_mqtt_revocation_failures_total{stage="kick"}' in text
        finally:
            revoker.sys_nc = real
            await silent.unsubscribe()
        st, _, _ = await api.call("PATCH", f"/things/{a}/secret", {"secret": "unkicked-2"}, token=token)
        assert st == 200
        assert await closed_within(dev, bound) < bound

    async def passes() -> bool:
        st, body, _ = await api.call("GET", "/health")
        return st == 200 and body["checks"]["mqtt_authorizer"] == "pass"

    await eventually(passes, 15, "/health passing again")


async def test_a_connect_is_recorded_as_decided_and_an_address_that_failed_is_refused(mqtt_settings: Settings) -> None:
    """An admitted connect is in the session registry with the views' position it was decided
    on (read in the same Redis instant: at least the thing's last change); an address that
    failed too often is refused before any secret is checked, the right one too, and such a
    refusal records nothing."""
    import time

    from redis.asyncio import Redis

    from service.runtime import Service

    s = replace(mqtt_settings, failure_limit_address=3)
    svc = await Service.start(s)
    redis = Redis.from_url(s.redis_url)
    try:
        async with aiohttp.ClientSession() as http:
            api = Client(http, svc.url)
            _, token = await api.user()
            c1 = await channel(api, token)
            st, thing, _ = await api.call("POST", "/things", {"name": "lim", "credentials": {"secret": "lim-1"}},
                                          token=token)
            assert st == 201, thing
            st, body, headers = await api.call("PUT", f"/channels/{c1}/things/{thing['id']}", token=token)
            assert st == 201, body
            changed = int(headers["X-Smq-Position"])
            async with device(s, thing["id"], "lim-1"):
                pass
            registry = f"{s.redis_prefix}mqtt:{thing['id']}"
            [(field, value)] = (await redis.hgetall(registry)).items()
            reached, expires = (int(x) for x in value.split())
            assert reached >= changed and expires > time.time() + 3000, value
            for _ in range(4):
                with pytest.raises(aiomqtt.MqttError):
                    async with device(s, thing["id"], "not-it"):
                        pass
            with pytest.raises(aiomqtt.MqttError):
                async with device(s, thing["id"], "lim-1"):
                    pass
            assert list(await redis.hgetall(registry)) == [field]
            # A thing that reconnects often keeps its newest SESSIONS_KEPT records, not one a
            # connect for the hour its records live (a revocation kicks each).
            base = int(time.time()) + 3600
            for i in range(SESSIONS_KEPT + 6):
                await thing_access(svc.container, "lim-1", None,
                                   SessionRecord(f"{s.redis_prefix}mqtt:", f"srv {1000 + i}", base + i))
            kept = await redis.hgetall(registry)
            assert len(kept) == SESSIONS_KEPT
            assert {f"srv {1000 + i}".encode() for i in range(6, SESSIONS_KEPT + 6)} <= set(kept), sorted(kept)
    finally:
        await redis.aclose()
        await svc.stop()


async def test_an_access_view_of_an_earlier_release_is_rebuilt_with_every_things_channels(settings: Settings) -> None:
    """The access view of a release before MQTT has no ``tconn:{thing}``: rebuilt once at start."""
    from redis.asyncio import Redis

    from service.runtime import Service

    redis = Redis.from_url(settings.redis_url or "")
    svc = await Service.start(settings)
    try:
        async with aiohttp.ClientSession() as session:
            api = Client(session, svc.url)
            _, token = await api.user()
            cid = await channel(api, token)
            tid = await made(api, token, "old-view-1", {cid: ["m_read"]})
        key = f"{settings.redis_prefix}tconn:{tid}"

        async def rebuilt() -> bool:
            return await redis.hgetall(key) == {cid.encode(): b"m_read"}

        await eventually(rebuilt, what="the access view holding tconn")
    finally:
        await svc.stop()
    try:
        await redis.delete(key, f"{settings.redis_prefix}shape:access")  # as an earlier release left it
        svc = await Service.start(settings)
        try:
            await eventually(rebuilt, what="the access view rebuilt with tconn")
        finally:
            await svc.stop()
    finally:
        await redis.aclose()


@pytest.fixture(scope="module")
def tls_nats() -> Iterator[tuple[str, Any, Path]]:
    """An embedded nats-server whose MQTT listener takes only clients with a certificate of a
    CA the test's service shares (its files in the folder returned)."""
    import shutil
    import tempfile

    from infra.ca import CertificateAuthority
    from infra.embedded import Embedded

    workdir = Path(tempfile.mkdtemp(prefix="smq-test-mqtts-"))
    ca = CertificateAuthority.load_or_create(workdir)
    emb = Embedded()
    try:
        url = emb.start_nats(workdir, mqtt_port=0, tls_ca=ca)
        yield url, emb.mqtt_auth, workdir
    finally:
        emb.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def test_a_certificate_of_certs_admits_a_thing_until_revoked(
        settings: Settings, tls_nats: tuple[str, Any, Path], tmp_path: Path) -> None:
    """x509: the listener verifies the chain against the service's CA, the authorizer names the
    thing by the certificate (its common name is the secret) and refuses a revoked one; a
    revocation closes the open session."""
    import ssl

    from infra.mqtt import ISSUER_SEED_FILE
    from service.runtime import Service

    url, auth, workdir = tls_nats
    s = replace(settings, nats_url=url, messages_subject="channels", mqtt_url=auth.url,
                mqtt_issuer_seed_file=str(workdir / ISSUER_SEED_FILE), mqtt_sys_url=auth.sys_url,
                ca_cert_file=str(workdir / "ca.crt"), ca_key_file=str(workdir / "ca.key"))
    host, port = address(s.mqtt_url) or ("", 0)

    def tls(cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(workdir / "ca.crt"))
        if cert and key:
            (tmp_path / "c.pem").write_text(cert)
            (tmp_path / "k.pem").write_text(key)
            ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
        return ctx

    svc = await Service.start(s)
    try:
        async with aiohttp.ClientSession() as session:
            api = Client(session, svc.url)
            _, token = await api.user()
            cid = await channel(api, token)
            tid = await made(api, token, "x509-secret-1", {cid: ["m_read", "m_write"]})
            st, issued, _ = await api.call("POST", "/certs", {"thing_id": tid, "ttl": "1h"}, token=token)
            assert st == 201, issued
            ctx = tls(issued["client_cert"], issued["client_key"])
            with pytest.raises((aiomqtt.MqttError, ssl.SSLError, OSError)):  # no certificate: no handshake
                async with aiomqtt.Client(host, port, username=tid, password="x509-secret-1",
                                          tls_context=tls(), timeout=5):
                    pass
            async with aiomqtt.Client(host, port, tls_context=ctx, timeout=10) as dev:  # the certificate alone
                assert [int(getattr(q, "value", q)) for q in await dev.subscribe(f"channels/{cid}/messages")] == [0]
                st, _, _ = await api.call("DELETE", f"/certs/{tid}", token=token)
                assert st == 200
                assert await closed_within(dev, s.rw_wait) < s.rw_wait
            with pytest.raises(aiomqtt.MqttError):  # revoked: refused at the next connect
                async with aiomqtt.Client(host, port, tls_context=tls(issued["client_cert"], issued["client_key"]),
                                          timeout=10):
                    pass
    finally:
        await svc.stop()
