"""The event stream as the audit log, over HTTP, through the real store, bus and views."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN, Client


async def _admin(client: Client) -> str:
    _, tok, _ = await client.call("POST", "/users/tokens/issue", {"identity": ADMIN[0], "secret": ADMIN[1]})
    return tok["access_token"]


async def test_history_of_a_thing_with_actor_and_correlation(client: Client) -> None:
    uid, token = await client.user()
    st, thing, _ = await client.call("POST", "/things", {"name": "weio", "credentials": {"secret": "s3cr3t-weio"}},
                                     token=token, headers={"X-Correlation-ID": "corr-create"})
    assert st == 201
    tid = thing["id"]
    await client.call("PATCH", f"/things/{tid}", {"name": "weio2"}, token=token,
                      headers={"X-Correlation-ID": "corr-update"})
    await client.call("POST", f"/things/{tid}/disable", token=token, headers={"X-Correlation-ID": "corr-off"})

    st, page, _ = await client.call("GET", f"/things/{tid}/events", token=token)
    assert st == 200, page
    events = page["events"]
    assert [e["type"] for e in events] == ["created", "updated", "disabled"]
    assert [e["version"] for e in events] == [1, 2, 3]
    assert all(e["actor"] == uid and e["aggregate_id"] == tid for e in events)
    assert [e["correlation_id"] for e in events] == ["corr-create", "corr-update", "corr-off"]
    assert all(e["causation_id"] for e in events)
    positions = [e["position"] for e in events]
    assert positions == sorted(positions)
    assert "s3cr3t-weio" not in str(page)  # credentials are redacted from the audit log

    # Another user sees none of it; a non-admin may not read the whole log.
    _, other = await client.user()
    assert (await client.call("GET", f"/things/{tid}/events", token=other))[0] == 404
    assert (await client.call("GET", "/events", token=token))[0] == 403
    st, mine, _ = await client.call("GET", f"/users/{uid}/events", token=token)
    assert st == 200 and [e["type"] for e in mine["events"]] == ["created"]


async def test_paging_the_log_sees_every_position_once(client: Client, service: Any) -> None:
    _, token = await client.user()
    st, _, _ = await client.call("POST", "/things/bulk", [{"name": f"t{i}"} for i in range(12)], token=token)
    assert st == 200
    admin = await _admin(client)
    top = await service.container.store.max_position()
    await client.call("GET", "/events?limit=1", token=admin,
                      headers={"X-Smq-After": str(top)})  # wait until the view holds every event
    seen: list[int] = []
    after = 0
    while True:
        st, page, _ = await client.call("GET", f"/events?after={after}&limit=7", token=admin)
        assert st == 200
        if not page["events"]:
            break
        seen += [e["position"] for e in page["events"]]
        after = page["next"]
    assert seen == list(range(1, top + 1))
    st, created, _ = await client.call("GET", "/events?aggregate=thing&type=created&limit=100", token=admin)
    assert len(created["events"]) == 12
    for bad in ("after=-1", "limit=0", "limit=5000", "from=yesterday", "after=x"):
        assert (await client.call("GET", f"/events?{bad}", token=admin))[0] == 400, bad
