# ruff: noqa: F811 - the fixtures of tests/integration/mqttkit.py are imported, then asked for by name
"""MQTT as an attacker tries it, against the session's embedded nats-server 2.15 and the
service's authorizer (docs/architecture.md, "MQTT", what is refused and why): another thing's
client id, a NATS-protocol client with a thing's credentials, the secret alone as username,
guessing from many addresses, wildcards and subjects outside the thing's channels."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import nats
import pytest
from redis.asyncio import Redis

from infra.settings import Settings
from tests.conftest import Client
from tests.integration.mqttkit import api, device, mqtt_service  # noqa: F401 - fixtures
from tests.integration.test_mqtt import channel, made, next_message
from workers.clientids import ClientIds

pytestmark = pytest.mark.timeout(120)






async def refused(settings: Settings, username: str | None, password: str | None, identifier: str = "",
                  clean: bool = True) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with device(settings, username, password, identifier, clean):
            pass


def codes(granted: Any) -> list[int]:
    return [int(getattr(q, "value", q)) for q in granted]


async def test_a_client_id_belongs_to_the_thing_first_admitted_with_it(
        api: Client, mqtt_settings: Settings, mqtt_service: Any) -> None:
    """NATS closes the session holding a client id when another connect brings it, and with
    clean_session=false hands that connect the session's queued QoS 1 messages: another thing
    (even a reader of the same channel) is refused the id before anything is closed or taken;
    a client id naming a thing goes to that thing, whoever used it first."""
    _, token = await api.user()
    ca = await channel(api, token)
    a = await made(api, token, "take-a-1", {ca: ["m_read", "m_write"]})
    b = await made(api, token, "take-b-1", {})
    c = await made(api, token, "take-c-1", {ca: ["m_read"]})  # may read A's channel
    ident = f"sensor-{uuid.uuid4().hex[:8]}"
    bus = await nats.connect(mqtt_settings.nats_url, connect_timeout=5)
    try:
        # A live: B and C bringing A's client id are refused, and A's session stays open.
        async with device(mqtt_settings, a, "take-a-1", ident) as dev:
            await dev.subscribe(f"channels/{ca}/messages/#")
            await refused(mqtt_settings, b, "take-b-1", ident)
            await refused(mqtt_settings, c, "take-c-1", ident, clean=False)
            await bus.publish(f"channels.{ca}.messages.live", b"still-a")
            assert (await next_message(dev)).payload == b"still-a"

        # A offline with a persistent session and a QoS 1 message queued: C cannot take it.
        async with device(mqtt_settings, a, "take-a-1", ident, clean=False) as dev:
            assert codes(await dev.subscribe(f"channels/{ca}/messages/#", qos=1)) == [1]
        async with device(mqtt_settings, a, "take-a-1") as pub:
            await pub.publish(f"channels/{ca}/messages/q", b"queued-for-a", qos=1)
        await refused(mqtt_settings, c, "take-c-1", ident, clean=False)
        async with device(mqtt_settings, a, "take-a-1", ident, clean=False) as dev:
            assert (await next_message(dev)).payload == b"queued-for-a"
        async with device(mqtt_settings, a, "take-a-1", ident):  # clean: the session is dropped
            pass

        # B squats the Agent's client id of A before A ever connects: A takes it back, B is out.
        agent = f"agent-{a}"
        async with device(mqtt_settings, b, "take-b-1", agent) as squat:
            async with device(mqtt_settings, a, "take-a-1", agent):
                with pytest.raises(aiomqtt.MqttError):  # NATS closed the squatter's session
                    await next_message(squat, 5)
        await refused(mqtt_settings, b, "take-b-1", agent)
        async with device(mqtt_settings, a, "take-a-1", agent):
            pass
    finally:
        await bus.close()


async def test_client_ids_a_thing_holds_are_bounded_and_freed(redis_url: str) -> None:
    """A device making up a client id at each connect holds only its latest ones; a removed
    thing's are freed (the revoker calls ``release``)."""
    redis = Redis.from_url(redis_url)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    ids = ClientIds(redis, prefix, ttl=60, per_thing=3)
    try:
        for n in range(5):
            assert await ids.claim(f"rand-{n}", "thing-a")
        assert not await ids.claim("rand-4", "thing-b") and not await ids.claim("rand-2", "thing-b")
        assert await ids.claim("rand-0", "thing-b")  # the oldest ones were let go
        assert await redis.zcard(f"{prefix}mqttids:thing-a") == 3
        assert await ids.release("thing-a") == 3
        assert await ids.claim("rand-4", "thing-b")
        assert not await ids.claim("rand-4", "thing-c")
        assert await ids.claim("agent-thing-c", "thing-b")  # squatted, until thing-c comes
        assert await ids.claim("agent-thing-c", "thing-c") and not await ids.claim("agent-thing-c", "thing-b")
    finally:
        keys = [k async for k in redis.scan_iter(f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_only_mqtt_clients_are_authorized(api: Client, mqtt_settings: Settings, mqtt_service: Any) -> None:
    """The callout is asked about every client of the server not in ``auth_users``: a thing's
    credentials on the NATS port (a client that could set headers, reply subjects, …) are
    refused."""
    _, token = await api.user()
    ca = await channel(api, token)
    a = await made(api, token, "proto-a-1", {ca: ["m_read", "m_write"]})
    host = mqtt_settings.nats_url.rsplit("@", 1)[-1]
    with pytest.raises(Exception, match="Authorization Violation"):
        nc = await nats.connect(f"nats://{a}:proto-a-1@{host}", connect_timeout=5, allow_reconnect=False,
                                max_reconnect_attempts=0)
        await nc.close()
    async with device(mqtt_settings, a, "proto-a-1"):  # the same credentials over MQTT
        pass


async def test_the_thing_id_and_secret_are_asked_and_no_log_holds_a_secret(
        api: Client, mqtt_settings: Settings, mqtt_service: Any, mqtt_nats: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    """The secret alone as username is admitted (clients that send only one), and NATS writes
    the username of every refused connect in its log: the embedded broker's log blanks client
    usernames. Neither the service's log (DEBUG) nor the broker's holds the secret of a device
    refused for a wrong password or a disabled thing, nor of one refused with its secret alone."""
    caplog.set_level(logging.DEBUG)
    _, token = await api.user()
    ca = await channel(api, token)
    alone, secret = (f"{w}-{uuid.uuid4().hex[:8]}" for w in ("alone", "never-logged"))
    lone = await made(api, token, alone, {ca: ["m_read"]})
    a = await made(api, token, secret, {ca: ["m_read"]})
    colon = await made(api, token, f"a:b:{secret}", {ca: ["m_read"]})
    async with device(mqtt_settings, alone, None):  # the secret alone as username
        pass
    async with device(mqtt_settings, alone, ""):  # an empty password is the same (NATS omits it)
        pass
    await refused(mqtt_settings, lone, "")  # the id alone is no secret
    await refused(mqtt_settings, a, secret + "x")
    await refused(mqtt_settings, a, secret + "\0")
    await refused(mqtt_settings, a, secret * (65535 // len(secret)))  # as long as MQTT allows
    async with device(mqtt_settings, colon, f"a:b:{secret}"):
        pass
    st, _, _ = await api.call("POST", f"/things/{a}/disable", token=token)
    assert st == 200
    await refused(mqtt_settings, a, secret)  # the right secret of a disabled thing
    st, _, _ = await api.call("POST", f"/things/{lone}/disable", token=token)
    assert st == 200
    await refused(mqtt_settings, alone, None)  # refused with the secret as its username
    assert not [r.getMessage() for r in caplog.records if secret in r.getMessage() or alone in r.getMessage()]
    broker_log = (Path(mqtt_nats[2]) / "nats.log").read_text(errors="replace")
    assert 'User "[redacted]"' in broker_log  # where the broker wrote the username
    assert secret not in broker_log and alone not in broker_log
    _, body, _ = await api.call("GET", "/metrics")
    assert secret not in (body.decode() if isinstance(body, bytes) else str(body))


async def test_failure_limits_apply_to_mqtt_connects_an_ipv6_client_by_its_64(mqtt_settings: Settings) -> None:
    """A client failing its connects runs out of tries (its right secret is then refused too,
    as over HTTP); an IPv6 client is counted by its /64, as over HTTP, not by each address."""
    from service.runtime import Service

    svc = await Service.start(replace(mqtt_settings, failure_limit_address=3, failure_limit_identity=0))
    try:
        async with aiohttp.ClientSession() as session:
            api = Client(session, svc.url)
            _, token = await api.user()
            a = await made(api, token, "limit-a-1", {})
        for _ in range(3):
            await refused(mqtt_settings, a, "limit-wrong")
        await refused(mqtt_settings, a, "limit-a-1")

        def request(host: str, password: str) -> dict[str, Any]:
            return {"server_id": {"id": "NTEST"}, "user_nkey": "UTEST",
                    "client_info": {"host": host, "id": 1, "type": "mqtt", "mqtt_id": f"v6-{a}"},
                    "connect_opts": {"user": a, "pass": password}}

        decide = svc.authorizer.decide
        for n in range(1, 4):
            assert (await decide(request(f"2001:db8:0:1::{n}", "limit-wrong"))).outcome == "refused_credentials"
        assert (await decide(request("2001:db8:0:1:ffff::9", "limit-a-1"))).outcome == "refused_limited"
        assert (await decide(request("2001:db8:0:2::1", "limit-a-1"))).outcome == "allowed"  # another /64
    finally:
        await svc.stop()


async def test_nothing_outside_the_things_channels_is_reached(
        api: Client, mqtt_settings: Settings, mqtt_service: Any) -> None:
    """Wildcards wider than a channel's messages and the server's own subjects are refused
    subscriptions; publishes outside the thing's channels (``$JS``, ``$SYS``, ``$MQTT``, the
    events, another channel) never reach the service's account."""
    _, token = await api.user()
    ca, cb = await channel(api, token), await channel(api, token)
    a = await made(api, token, "wide-a-1", {ca: ["m_read", "m_write"]})
    bus = await nats.connect(mqtt_settings.nats_url, connect_timeout=5)
    seen = await bus.subscribe(">")
    await bus.flush()
    try:
        async with device(mqtt_settings, a, "wide-a-1") as dev:
            for topic in ("#", "+/#", "channels/#", "channels/+/messages", "channels/+/messages/#",
                          f"channels/{ca}/#", f"channels/{cb}/messages", "$MQTT/#", "$SYS/#", "$JS/API/#",
                          "_INBOX/#", f"{mqtt_settings.events_subject.replace('.', '/')}/#"):
                assert codes(await dev.subscribe(topic)) == [0x80], topic
            assert codes(await dev.subscribe(f"channels/{ca}/messages/+")) == [0]
            for topic in ("$JS/API/STREAM/LIST", f"$JS/API/STREAM/DELETE/{mqtt_settings.stream}",
                          "$SYS/REQ/USER/AUTH", "$MQTT/sess/x", "_INBOX/x", f"channels/{cb}/messages",
                          f"channels/{ca}", f"{mqtt_settings.events_subject.replace('.', '/')}/thing/created"):
                await dev.publish(topic, b"outside", qos=1)
            await dev.publish(f"channels/{ca}/messages", b"marker", qos=1)
            async with asyncio.timeout(5):
                while (msg := await seen.next_msg(timeout=5)).data != b"marker":
                    assert msg.data != b"outside", msg.subject
    finally:
        await bus.close()


async def test_things_cannot_fill_the_disk_with_retained_messages(settings: Settings, tmp_path: Path) -> None:
    """A retained message is kept per topic, and a thing may publish on any topic below its
    channel's: the things' account's JetStream is bounded (``natsconf.THINGS_STORE``), so the
    service's own (the event stream's disk) is not theirs to fill."""
    from infra.embedded import Embedded
    from infra.mqtt import ISSUER_SEED_FILE
    from service.runtime import Service

    emb = Embedded()
    url = emb.start_nats(tmp_path / "nats", mqtt_port=0, things_store=("1M", "4M"))
    try:
        assert emb.mqtt_auth is not None
        s = replace(settings, nats_url=url, messages_subject="channels", mqtt_url=emb.mqtt_auth.url,
                    mqtt_issuer_seed_file=str(tmp_path / "nats" / ISSUER_SEED_FILE),
                    mqtt_sys_url=emb.mqtt_auth.sys_url)
        svc = await Service.start(s)
        try:
            async with aiohttp.ClientSession() as session:
                api = Client(session, svc.url)
                _, token = await api.user()
                ca = await channel(api, token)
                a = await made(api, token, "fill-a-1", {ca: ["m_write"]})
                async with device(s, a, "fill-a-1") as dev:
                    for n in range(40):  # 8 MB on distinct topics
                        await dev.publish(f"channels/{ca}/messages/r{n}", b"x" * 200_000, qos=1, retain=True)
                    await dev.publish(f"channels/{ca}/messages", b"", qos=1)  # the broker has them all
                things = tmp_path / "nats" / "nats" / "jetstream" / "THINGS"
                used = sum(f.stat().st_size for f in things.rglob("*") if f.is_file())
                assert 0 < used <= 5 * 2**20, used
                st, thing, _ = await api.call("POST", "/things", {"name": "after"}, token=token)
                assert st == 201, thing  # the event stream still takes writes
        finally:
            await svc.stop()
    finally:
        emb.stop()
