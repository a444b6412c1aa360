"""The guide's flow with the default layout (its content naming this service's MQTT address),
and a failed provisioning that leaves nothing behind: no list, count, lookup, key or cache
holds its things and channels; their history keeps them, created then removed."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from uuid import UUID

import pytest

from domain.common import Principal
from domain.provisioning import STEPS
from infra.layout import default_config, with_mqtt
from tests.conftest import ADMIN, Client
from tests.faults import Crash, Faults, FaultySaga, compensate_abandoned, inject

URL = "tcp://cloud.example.com:18830"


async def test_the_guide_s_flow_with_the_default_layout(client: Client, service: Any) -> None:
    c = service.container
    c.settings = replace(c.settings, mqtt_url=URL)
    _, token = await client.user()
    st, content, _ = await client.call("GET", "/mapping", token=token)
    assert st == 200, content
    assert content == with_mqtt(default_config()["bootstrap"]["content"], URL)
    assert content["agent"]["mqtt"]["url"] == content["export"]["mqtt"]["host"] == URL
    assert content["agent"]["server"]["nats_url"] == "localhost:4222"  # the gateway's own NATS

    body = {"name": "edge-gw", "external_id": "gateway", "external_key": "external_key"}
    st, res, _ = await client.call("POST", "/mapping", body, token=token)
    assert st == 201, res
    [thing] = res["things"]
    assert [c["metadata"]["type"] for c in res["channels"]] == ["control", "data"]
    st, boot, _ = await client.call("GET", "/things/bootstrap/gateway",
                                    headers={"Authorization": "Thing external_key"})
    assert st == 200, boot
    assert boot["mainflux_id"] == thing["id"] and boot["mainflux_key"] == thing["key"]
    assert isinstance(boot["content"], str) and json.loads(boot["content"]) == content


async def _admin(client: Client) -> str:
    _, tok, _ = await client.call("POST", "/users/tokens/issue", {"identity": ADMIN[0], "secret": ADMIN[1]})
    return str(tok["access_token"])


async def _made(client: Client, correlation: str, after: str) -> tuple[list[str], list[str]]:
    """The ids of the things and channels a request made, from the audit log."""
    st, log, _ = await client.call("GET", f"/events?correlation_id={correlation}&type=created&limit=100",
                                   token=await _admin(client), headers={"X-Smq-After": after})
    assert st == 200, log
    of = lambda kind: [e["aggregate_id"] for e in log["events"] if e["aggregate"] == kind]  # noqa: E731
    return of("thing"), of("channel")


async def _nothing_left(client: Client, service: Any, token: str, things: list[str], channels: list[str],
                        secrets: list[str]) -> None:
    c = service.container
    for kind, names in (("things", ("thing", "edge-gw")), ("channels", ("control-channel", "data-channel"))):
        st, page, _ = await client.call("GET", f"/{kind}?status=all", token=token)
        assert st == 200 and page["total"] == 0 and page[kind] == [], page
        for name in names:
            st, page, _ = await client.call("GET", f"/{kind}?status=all&name={name}", token=token)
            assert page["total"] == 0, page
    for tid in things:
        assert (await client.call("GET", f"/things/{tid}", token=token))[0] == 404
        assert (await client.call("GET", f"/things/{tid}/channels", token=token))[0] == 404
    for cid in channels:
        assert (await client.call("GET", f"/channels/{cid}", token=token))[0] == 404
    for secret in secrets:
        assert (await client.call("POST", "/identify", headers={"Authorization": f"Thing {secret}"}))[0] == 401
        for cid in channels:
            st, _, _ = await client.call("POST", f"/http/channels/{cid}/messages", data=b"[]",
                                         headers={"Authorization": f"Thing {secret}",
                                                  "Content-Type": "application/senml+json"})
            assert st == 401
    ids = [UUID(i) for i in things + channels]
    async with c.pool.connection() as conn:
        for table, column in (("things_view", "id"), ("channels_view", "id"), ("thing_shares", "thing_id"),
                              ("channel_shares", "channel_id"), ("connections", "thing_id"),
                              ("connections", "channel_id"), ("channel_policies", "object")):
            row = await (await conn.execute(f"select count(*) from {table} where {column} = any(%s)",  # noqa: S608
                                            (ids,))).fetchone()
            assert row is not None and row[0] == 0, table
        for counts in ("things_counts", "channels_counts"):
            row = await (await conn.execute(f"select coalesce(sum(n), 0) from {counts}")).fetchone()  # noqa: S608
            assert row is not None and row[0] == 0, counts
    p = c.settings.redis_prefix
    keys = [k.decode() async for k in c.redis.scan_iter(match=f"{p}*", count=1000)]
    assert not [k for k in keys if any(i in k for i in things + channels)], keys
    assert not [k for k in keys if k.startswith(f"{p}thingkey:")], keys


async def _history(client: Client, token: str, kind: str, eid: str) -> list[str]:
    st, log, _ = await client.call("GET", f"/{kind}/{eid}/events", token=token)
    assert st == 200, log
    return [e["type"] for e in log["events"]]


async def _secrets(service: Any, things: list[str]) -> list[str]:
    app = service.container.store.app
    return [app.repository.get(UUID(t)).secret for t in things]  # removed: only the store has it


@pytest.mark.parametrize("step", ["channels", "gateway"])
async def test_a_failed_mapping_leaves_nothing_behind(client: Client, service: Any, step: str) -> None:
    c = service.container
    c.provision = replace(c.provision, layout=replace(c.provision.layout, x509=True))
    _, token = await client.user()
    inject(c, Faults(fail_at=step))
    st, err, headers = await client.call("POST", "/mapping", {"external_id": "gw", "external_key": "k",
                                                              "name": "edge-gw"},
                                         token=token, headers={"X-Correlation-ID": f"gone-{step}"})
    assert st >= 400 and step in err["error"], err
    after = headers["X-Smq-Position"]
    things, channels = await _made(client, f"gone-{step}", after)
    assert len(things) == 1 and len(channels) == (2 if step == "gateway" else 0)
    await _nothing_left(client, service, token, things, channels, await _secrets(service, things))
    # The history keeps them: created, then removed (their owner still reads it).
    for kind, ids in (("things", things), ("channels", channels)):
        for eid in ids:
            types = await _history(client, token, kind, eid)
            assert types[0] == "created" and types[-1] == "removed" and types.count("removed") == 1, types
    # Another user reads no history of them.
    _, other = await client.user()
    assert (await client.call("GET", f"/things/{things[0]}/events", token=other))[0] == 404
    # Without the fault, the same gateway is provisioned afresh.
    inject(c, Faults())
    st, res, _ = await client.call("POST", "/mapping", {"external_id": "gw", "external_key": "k"}, token=token)
    assert st == 201 and res["things"][0]["id"] not in things, res
    st, page, _ = await client.call("GET", "/things?status=all", token=token)
    assert page["total"] == 1


async def test_a_crash_between_steps_leaves_nothing_behind(client: Client, service: Any) -> None:
    c = service.container
    _, token = await client.user()
    who_id = (await client.call("GET", "/users/profile", token=token))[1]["id"]
    who = Principal(user_id=UUID(who_id))
    done = await c.store.command(c.store.app.start_provisioning, who, "gw-crash", "k", "", c.provision.layout)
    prov_id = done.result.id
    with pytest.raises(Crash):
        await FaultySaga(c.store, c.ca, Faults(crash_after="connections")).run(prov_id)

    p = await compensate_abandoned(c, prov_id)
    assert p.compensated == list(reversed(STEPS[:STEPS.index("connections") + 1]))
    things = [str(p.made_id("thing", 0))]
    channels = [str(p.made_id("channel", i)) for i in range(2)]
    await c.freshness.record([who_id], await c.store.max_position())
    await _nothing_left(client, service, token, things, channels, await _secrets(service, things))
    assert (await _history(client, token, "things", things[0]))[-1] == "removed"
