# ruff: noqa: F811 - the fixtures of tests/integration/mqttkit.py are imported, then asked for by name
"""The provisioning guide's flow end to end, as its gateway Agent runs it
(/work/shared/reference/agent.md), with a real MQTT client (aiomqtt) against the session's
embedded nats-server 2.15: ``POST /mapping`` with the default layout, the bootstrap fetch with
the bare external key, the content's MQTT address, the Agent's MQTT session on the control
channel; and a thing a failed provisioning removes losing its session."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any
from uuid import UUID

import aiomqtt
import nats
import pytest

from domain.common import Principal
from infra.mqtt import address
from infra.settings import Settings
from tests.conftest import Client, eventually
from tests.faults import Crash, Faults, FaultySaga, compensate_abandoned
from tests.integration.mqttkit import api, mqtt_service  # noqa: F401 - fixtures
from tests.integration.test_mqtt import closed_within, next_message

pytestmark = pytest.mark.timeout(120)




@asynccontextmanager
async def mqtt_client(url: str, username: str, password: str | None,
                      identifier: str | None = None) -> AsyncIterator[aiomqtt.Client]:
    """An MQTT client dialling ``url`` as a device is told to (``tcp://host:port`` or ``host:port``)."""
    host, port = address(url) or ("", 0)
    async with aiomqtt.Client(host, port, username=username, password=password, timeout=10,
                              identifier=identifier or f"dev-{uuid.uuid4().hex[:8]}") as c:
        yield c


def control_and_data(channels: list[dict[str, Any]]) -> tuple[str, str]:
    """The Agent's choice: the first channel is the control one, the second the data one,
    swapped when the first says it is the data channel."""
    first, second = channels[0], channels[1]
    if (first.get("metadata") or {}).get("type") == "data":
        first, second = second, first
    return str(first["id"]), str(second["id"])


async def test_a_provisioned_gateway_comes_alive_over_mqtt(api: Client, mqtt_settings: Settings,
                                                          mqtt_service: Any) -> None:
    assert not mqtt_settings.extra.get("PROVISION_CONFIG_FILE")  # the packaged default layout
    _, token = await api.user()
    st, res, _ = await api.call("POST", "/mapping", {"name": "edge-gw", "external_id": "gateway",
                                                     "external_key": "external_key"}, token=token)
    assert st == 201, res

    # The Agent's bootstrap fetch: the bare external key, as the older Agent sends it.
    st, boot, _ = await api.call("GET", "/things/bootstrap/gateway", headers={"Authorization": "external_key"})
    assert st == 200, boot
    thing, secret = boot["mainflux_id"], boot["mainflux_key"]
    assert thing == res["things"][0]["id"]
    assert isinstance(boot["content"], str)
    content = json.loads(boot["content"])
    url = content["agent"]["mqtt"]["url"]
    assert url == content["export"]["mqtt"]["host"] == mqtt_settings.mqtt_url  # this service's listener
    assert (address(url),) == mqtt_service.container.mqtt.brokers
    qos = int(content["agent"]["mqtt"]["qos"])
    control, data = control_and_data(boot["mainflux_channels"])
    assert {c["metadata"]["type"]: c["id"] for c in res["channels"]} == {"control": control, "data": data}

    # The cloud's side: a console thing that sends commands over HTTP and reads answers over MQTT.
    st, console, _ = await api.call("POST", "/things", {"name": "console", "credentials": {"secret": "console-key-1"}},
                                    token=token)
    assert st == 201, console
    st, body, _ = await api.call("PUT", f"/channels/{control}/things/{console['id']}",
                                 {"actions": ["m_read", "m_write"]}, token=token)
    assert st == 201, body
    bus = await nats.connect(mqtt_settings.nats_url, connect_timeout=5)
    answers = await bus.subscribe(f"channels.{control}.messages.res")
    await bus.flush()
    try:
        async with mqtt_client(url, thing, secret, f"agent-{thing}") as agent, \
                mqtt_client(url, console["id"], "console-key-1") as watcher:
            # The Agent subscribes as it does (QoS 0): commands, and its services' topics.
            for topic in (f"channels/{control}/messages/req", f"channels/{control}/messages/services/#"):
                granted = await agent.subscribe(topic, qos=0)
                assert [int(getattr(q, "value", q)) for q in granted] == [0], (topic, granted)
            assert [int(getattr(q, "value", q))
                    for q in await watcher.subscribe(f"channels/{control}/messages/res")] == [0]

            # A command on the control channel, over HTTP (SenML, as the Agent reads it).
            command = json.dumps([{"bn": "req-1:", "n": "exec", "vs": "uptime"}]).encode()
            st, _, _ = await api.call("POST", f"/http/channels/{control}/messages/req", data=command,
                                      headers={"Authorization": "Thing console-key-1",
                                               "Content-Type": "application/senml+json"})
            assert st == 202
            got = await next_message(agent)
            assert (str(got.topic), got.payload) == (f"channels/{control}/messages/req", command)

            # The Agent's answer, with the layout's QoS: NATS and the other MQTT client get it.
            answer = json.dumps([{"bn": "req-1", "n": "exec", "t": 1.7e9, "vs": "up 1 day"}]).encode()
            await agent.publish(f"channels/{control}/messages/res", answer, qos=qos, retain=False)
            msg = await answers.next_msg(timeout=5)
            assert (msg.subject, msg.data) == (f"channels.{control}.messages.res", answer)
            assert msg.headers is not None and json.loads(msg.headers["Nats-Request-Info"])["user"] == thing
            got = await next_message(watcher)
            assert (str(got.topic), got.payload) == (f"channels/{control}/messages/res", answer)

            # Its data channel takes its telemetry too (the layout connects it both ways).
            seen = await bus.subscribe(f"channels.{data}.messages")
            await bus.flush()
            await agent.publish(f"channels/{data}/messages", b'[{"n":"temp","v":21}]', qos=1)
            assert (await seen.next_msg(timeout=5)).data == b'[{"n":"temp","v":21}]'
    finally:
        await bus.close()


async def test_a_thing_a_failed_provisioning_removes_loses_its_session(
        api: Client, mqtt_settings: Settings, mqtt_service: Any) -> None:
    """A provisioning cut after its configs step (the gateway could already fetch its
    configuration and connect) is compensated: its thing is removed (not disconnected: the
    connections step never ran), its open MQTT session is closed within the read-your-writes
    bound, and it can neither connect again nor fetch its configuration."""
    c = mqtt_service.container
    _, token = await api.user()
    who = Principal(user_id=UUID((await api.call("GET", "/users/profile", token=token))[1]["id"]))
    layout = c.provision.effective(c.settings.mqtt_url)  # as the route gives it
    done = await c.store.command(c.store.app.start_provisioning, who, "gw-cut", "cut-key", "", layout)
    prov_id = done.result.id
    with pytest.raises(Crash):
        await FaultySaga(c.store, c.ca, Faults(crash_after="configs")).run(prov_id)

    fetched: list[dict[str, Any]] = []

    async def fetch() -> bool:  # the configs view may not hold it yet (a device has no writes to wait for)
        st, boot, _ = await api.call("GET", "/things/bootstrap/gw-cut", headers={"Authorization": "cut-key"})
        fetched.append(boot)
        return st == 200

    await eventually(fetch, what="the cut provisioning's configuration")
    boot = fetched[-1]
    thing, secret = boot["mainflux_id"], boot["mainflux_key"]
    url = json.loads(boot["content"])["agent"]["mqtt"]["url"]
    plain = f"gw-{uuid.uuid4().hex[:8]}"  # a client id not naming the thing: it holds it
    async with mqtt_client(url, thing, secret, plain):
        pass
    async with mqtt_client(url, thing, secret, f"agent-{thing}") as dev:
        p = await compensate_abandoned(c, prov_id)
        assert "connections" not in p.compensated and "things" in p.compensated, p.compensated
        assert await closed_within(dev, mqtt_settings.rw_wait) < mqtt_settings.rw_wait
    with pytest.raises(aiomqtt.MqttError):
        async with mqtt_client(url, thing, secret):
            pass
    st, _, _ = await api.call("GET", "/things/bootstrap/gw-cut", headers={"Authorization": "cut-key"})
    assert st == 404
    # The removed thing's client ids are free for another thing (workers.clientids).
    st, other, _ = await api.call("POST", "/things", {"name": "next", "credentials": {"secret": "next-key-1"}},
                                  token=token)
    assert st == 201, other
    async with mqtt_client(url, other["id"], "next-key-1", plain):
        pass
    st, log, _ = await api.call("GET", f"/things/{thing}/events", token=token)
    assert st == 200 and [e["type"] for e in log["events"]][-1] == "removed", log


async def test_health_passes_while_any_listed_listener_answers(api: Client, mqtt_service: Any) -> None:
    """``SMQ_MQTT_BROKER`` lists a cluster's nodes: one node away is no failure of the API;
    none answering is, naming them."""
    from infra.mqtt import free_port

    c = mqtt_service.container
    live, dead = c.mqtt.brokers[0], ("127.0.0.1", free_port("127.0.0.1"))
    c.mqtt = replace(c.mqtt, brokers=(dead, live))
    st, health, _ = await api.call("GET", "/health")
    assert st == 200 and health["checks"]["mqtt_broker"] == "pass", health
    c.mqtt = replace(c.mqtt, brokers=(dead,))
    st, health, _ = await api.call("GET", "/health")
    assert st == 503 and health["checks"]["mqtt_broker"] == f"fail: MQTT port 127.0.0.1:{dead[1]} not reachable", health
