"""POST /mapping: the guide's Provision and Example sections, and the saga's failure paths,
through the real store, bus and views."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

import pytest

from domain.common import Principal
from domain.provisioning import COMPENSATING, FAILED, RUNNING, STEPS, provisioning_id
from infra.layout import ProvisionSettings
from tests.conftest import ADMIN, Client, eventually
from tests.faults import Crash, Faults, FaultySaga, inject
from workers.provisioning import SagaRunner


def _layout(service: Any, **changes: Any) -> None:
    c = service.container
    c.provision = replace(c.provision, layout=replace(c.provision.layout, **changes))


async def _enabled(client: Client, token: str) -> tuple[int, int]:
    _, things, _ = await client.call("GET", "/things", token=token)
    _, channels, _ = await client.call("GET", "/channels", token=token)
    return things["total"], channels["total"]


async def test_guide_example_ends_with_the_gateway_fetch(client: Client) -> None:
    uid, token = await client.user("john.doe@email.com")
    body = {"name": "edge-gw", "external_id": "gateway", "external_key": "external_key"}
    st, res, _ = await client.call("POST", "/mapping", body, token=token)
    assert st == 201, res
    [thing] = res["things"]
    assert thing["name"] == "edge-gw" and thing["metadata"] == {"external_id": "gateway"} and thing["key"]
    assert [(c["name"], c["metadata"]) for c in res["channels"]] == [
        ("control-channel", {"type": "control"}), ("data-channel", {"type": "data"})]
    assert res["whitelisted"] == {thing["id"]: True}

    st, boot, _ = await client.call("GET", "/things/bootstrap/gateway",
                                    headers={"Authorization": "Thing external_key",
                                             "Content-Type": "application/json"})
    assert st == 200, boot
    assert boot["mainflux_id"] == thing["id"] and boot["mainflux_key"] == thing["key"]
    assert sorted(c["id"] for c in boot["mainflux_channels"]) == sorted(c["id"] for c in res["channels"])

    st, conns, _ = await client.call("GET", f"/things/{thing['id']}/channels", token=token)
    assert st == 200 and conns["total"] == 2
    st, got, _ = await client.call("GET", f"/things/{thing['id']}", token=token)
    md = got["metadata"]
    assert md["type"] == "gateway" and md["cfg_id"] == thing["id"] and md["external_id"] == "gateway"
    assert {md["ctrl_channel_id"], md["data_channel_id"]} == {c["id"] for c in res["channels"]}
    assert "external_key" not in md

    # The same external id again: the first layout, and nothing new.
    before = await _enabled(client, token)
    st, again, _ = await client.call("POST", "/mapping", body, token=token)
    assert st == 201 and again == res
    assert await _enabled(client, token) == before == (1, 2)


async def test_credentials_from_the_configuration(client: Client, service: Any) -> None:
    uid, token = await client.user("prov@example.com", secret="provsecret")
    body = {"external_id": "33:52:77:99:43", "external_key": "223334fw2"}
    assert (await client.call("POST", "/mapping", body))[0] == 401
    c = service.container
    c.provision = ProvisionSettings(c.provision.layout, user="prov@example.com", password="provsecret")
    st, res, _ = await client.call("POST", "/mapping", body)
    assert st == 201, res
    assert res["things"][0]["metadata"]["external_id"] == "33:52:77:99:43"
    c.provision = ProvisionSettings(c.provision.layout, api_key=token)
    st, again, _ = await client.call("POST", "/mapping", body)
    assert st == 201 and again["things"][0]["id"] == res["things"][0]["id"]
    _layout(service, content={"agent": {"log": {"level": "info"}}})
    st, content, _ = await client.call("GET", "/mapping", token=token)
    assert st == 200 and content == {"agent": {"log": {"level": "info"}}}


@pytest.mark.parametrize("step", STEPS)
async def test_a_failing_step_leaves_nothing_enabled_or_connected(client: Client, service: Any,
                                                                  step: str) -> None:
    uid, token = await client.user()
    _layout(service, x509=True)
    inject(service.container, Faults(fail_at=step))
    st, err, headers = await client.call("POST", "/mapping", {"external_id": f"gw-{step}", "external_key": "k"},
                                         token=token, headers={"X-Correlation-ID": f"fail-{step}"})
    assert st >= 400 and step in err["error"]
    assert await _enabled(client, token) == (0, 0)
    assert (await client.call("GET", f"/things/bootstrap/gw-{step}",
                              headers={"Authorization": "Thing k"}))[0] == 404
    _, admin, _ = await client.call("POST", "/users/tokens/issue", {"identity": ADMIN[0], "secret": ADMIN[1]})
    st, log, _ = await client.call("GET", f"/events?correlation_id=fail-{step}&aggregate=provisioning&limit=100",
                                   token=admin["access_token"], headers={"X-Smq-After": headers["X-Smq-Position"]})
    types = [(e["type"], e["data"].get("step")) for e in log["events"]]
    done = [s for s in STEPS[:STEPS.index(step)]]
    assert types == [("started", None), *[("step_done", s) for s in done], ("failed", step),
                     *[("step_compensated", s) for s in reversed(done)], ("compensated", None)]

    # A later attempt without the fault provisions afresh.
    inject(service.container, Faults())
    st, res, _ = await client.call("POST", "/mapping", {"external_id": f"gw-{step}", "external_key": "k"},
                                   token=token)
    assert st == 201, res
    assert "client_cert" in res and res["ca_cert"]
    assert await _enabled(client, token) == (1, 2)


async def test_a_refusing_ca_and_a_taken_external_id(client: Client, service: Any) -> None:
    _, token = await client.user()
    _layout(service, x509=True)
    inject(service.container, Faults(ca_refuses=True))
    st, err, _ = await client.call("POST", "/mapping", {"external_id": "gw-ca", "external_key": "k"}, token=token)
    assert st == 503 and "certificate authority" in err["error"]
    assert await _enabled(client, token) == (0, 0)
    inject(service.container, Faults())
    assert (await client.call("POST", "/mapping", {"external_id": "gw-ca", "external_key": "k"},
                              token=token))[0] == 201
    _, other = await client.user()
    st, err, _ = await client.call("POST", "/mapping", {"external_id": "gw-ca", "external_key": "k2"}, token=other)
    assert st == 409 and "external_id" in err["error"]
    assert await _enabled(client, other) == (0, 0)
    st, dry, _ = await client.call("POST", "/mapping?dry_run=true", {"external_id": "gw-ca", "external_key": "k"},
                                   token=other)
    assert st == 409 and dry["conflicts"] == ["external_id already exists"]


async def test_bad_requests_and_dry_run_append_nothing(client: Client, service: Any) -> None:
    _, token = await client.user()
    top = await service.container.store.max_position()
    for body in ({"external_key": "k"}, {"external_id": "gw"}, {"external_id": "", "external_key": "k"},
                 {"external_id": 5, "external_key": "k"}):
        st, err, _ = await client.call("POST", "/mapping", body, token=token)
        assert st == 400, (body, err)
        # A dry run refuses what the real run refuses (it answered 200 with "conflicts").
        st, err, _ = await client.call("POST", "/mapping?dry_run=true", body, token=token)
        assert st == 400 and "external_" in err["error"], (body, err)
    st, dry, _ = await client.call("POST", "/mapping?dry_run=true", {"external_id": "gw-d", "external_key": "k",
                                                                     "name": "n"}, token=token)
    assert st == 200 and dry["conflicts"] == [] and dry["things"][0] == {
        "name": "n", "metadata": {"external_id": "gw-d"}}
    assert await service.container.store.max_position() == top


async def test_a_process_killed_between_steps_is_compensated_by_the_next(client: Client, service: Any) -> None:
    uid, token = await client.user()
    c = service.container
    who_id = (await client.call("GET", "/users/profile", token=token))[1]["id"]
    who = Principal(user_id=UUID(who_id))
    done = await c.store.command(c.store.app.start_provisioning, who, "gw-crash", "k", "", c.provision.layout)
    prov_id = done.result.id
    assert prov_id == provisioning_id(who.user_id, "gw-crash")
    dying = FaultySaga(c.store, c.ca, Faults(crash_after="channels"))
    with pytest.raises(Crash):
        await dying.run(prov_id)
    p = await c.store.run(c.store.app.provisioning, prov_id)
    assert p.status == RUNNING and list(p.done) == ["things", "channels"]
    # Commands made here, not through HTTP: the user's next reads wait for them all the same.
    await c.freshness.record([who_id], await c.store.max_position())
    assert await _enabled(client, token) == (1, 2)  # half done, as a dead process leaves it

    async def view_sees_it() -> bool:
        async with c.pool.connection() as conn:
            row = await (await conn.execute("select status from provisionings_view where id=%s",
                                            (prov_id,))).fetchone()
        return row is not None and row[0] == RUNNING

    await eventually(view_sees_it, what="provisioning in the view")
    successor = SagaRunner(c.store, c.ca)
    assert await successor.recover(c.pool, stale_after=0) == [prov_id]
    p = await c.store.run(c.store.app.provisioning, prov_id)
    assert p.status == FAILED and p.compensated == ["channels", "things"]
    await c.freshness.record([who_id], await c.store.max_position())
    assert await _enabled(client, token) == (0, 0)
    assert COMPENSATING not in (await successor.recover(c.pool, stale_after=0))


async def test_a_new_gateway_is_provisioned_in_one_transaction(client: Client, service: Any) -> None:
    """The whole layout, with the saga's record of every step and its completion, is one
    commit: nothing of it can be seen, or left behind, half made. The events are those the
    steps would have recorded, in the same order, after the things they describe."""
    uid, token = await client.user()
    _layout(service, x509=True)
    c = service.container
    committer = c.store.app.saver
    before_batches, before_top = committer.batches, await c.store.max_position()
    st, res, headers = await client.call("POST", "/mapping", {"external_id": "gw-once", "external_key": "k"},
                                         token=token, headers={"X-Correlation-ID": "at-once"})
    assert st == 201, res
    assert committer.batches == before_batches + 1  # one store transaction, nothing else
    top = int(headers["X-Smq-Position"])
    _, admin, _ = await client.call("POST", "/users/tokens/issue", {"identity": ADMIN[0], "secret": ADMIN[1]})
    st, log, _ = await client.call("GET", "/events?correlation_id=at-once&limit=100",
                                   token=admin["access_token"], headers={"X-Smq-After": str(top)})
    positions = [e["position"] for e in log["events"]]
    assert positions == list(range(before_top + 1, top + 1))  # every event of that commit, and only it
    saga = [(e["type"], e["data"].get("step")) for e in log["events"] if e["aggregate"] == "provisioning"]
    assert saga == [("started", None), *[("step_done", s) for s in STEPS], ("completed", None)]
    kinds = [e["aggregate"] for e in log["events"]]
    assert kinds[-1] == "provisioning" and kinds.index("provisioning") > kinds.index("thing")
    # What it made works as the stepwise saga's does: certificates, connections, the fetch.
    assert "client_cert" in res and res["ca_cert"] and res["whitelisted"] == {res["things"][0]["id"]: True}
    assert await _enabled(client, token) == (1, 2)
    st, boot, _ = await client.call("GET", "/things/bootstrap/gw-once", headers={"Authorization": "Thing k"})
    assert st == 200 and boot["mainflux_id"] == res["things"][0]["id"]
    # A repeat answers the first layout (the stepwise path finds it completed).
    st, again, _ = await client.call("POST", "/mapping", {"external_id": "gw-once", "external_key": "k"},
                                     token=token)
    assert st == 201 and again == res


async def test_a_layout_claiming_one_external_id_twice_is_refused_whole(client: Client, service: Any) -> None:
    """Two of the layout's things carry the external id: one gateway cannot hold it twice. The
    one-transaction build sees the second claim of the same key and gives up; the stepwise saga
    then fails at the configs and undoes what it made. Nothing stays enabled."""
    _, token = await client.user()
    _layout(service, things=[{"name": "a", "metadata": {"external_id": "x"}},
                             {"name": "b", "metadata": {"external_id": "x"}}])
    st, err, _ = await client.call("POST", "/mapping", {"external_id": "gw-twice", "external_key": "k"},
                                   token=token)
    assert st == 409, err
    assert "configs" in err["error"]
    assert await _enabled(client, token) == (0, 0)
    assert (await client.call("GET", "/things/bootstrap/gw-twice", headers={"Authorization": "Thing k"}))[0] == 404
