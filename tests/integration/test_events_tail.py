"""`smq events tail`: the event log followed over HTTP (GET /events) and straight off the
JetStream stream, from a position, filtered by aggregate and type."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from infra.settings import Settings
from service.cli import main
from tests.conftest import ADMIN, Client


async def _admin(client: Client) -> str:
    st, tok, _ = await client.call("POST", "/users/tokens/issue", {"identity": ADMIN[0], "secret": ADMIN[1]})
    assert st == 201, tok
    return tok["access_token"]


async def _tail(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    # The service answers on this loop, so the (blocking) command runs in a thread.
    code = await asyncio.wait_for(asyncio.to_thread(main, ["events", "tail", *argv]), 10)
    assert code == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


async def test_tail_over_http_from_a_position(client: Client, service: Any, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    admin = await _admin(client)
    _, token = await client.user()
    st, bulk, _ = await client.call("POST", "/things/bulk", [{"name": f"t{i}"} for i in range(3)], token=token)
    assert st == 200
    tid = bulk["things"][0]["id"]
    _, _, headers = await client.call("POST", f"/things/{tid}/disable", token=token)
    last = int(headers["X-Smq-Position"])
    monkeypatch.setenv("SMQ_URL", service.url)
    monkeypatch.setenv("SMQ_TOKEN", admin)

    events = await _tail(capsys, "--aggregate", "thing", "--count", "4", "--interval", "0.05")
    assert [(e["type"], e["aggregate_id"]) for e in events] == [
        *(("created", t["id"]) for t in bulk["things"]), ("disabled", tid)]
    assert events[-1]["position"] == last and events[0]["data"]["secret"] == "***"

    # From a position on, whatever the service writes meanwhile; stops when idle.
    await client.call("POST", f"/things/{tid}/enable", token=token)
    later = await _tail(capsys, "--after", str(last), "--type", "enabled", "--idle-exit", "0.5",
                        "--interval", "0.05")
    assert [(e["aggregate"], e["type"], e["actor"]) for e in later] == [("thing", "enabled", events[0]["actor"])]


async def test_tail_off_the_stream_from_a_position(client: Client, service: Any, settings: Settings,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, token = await client.user()
    st, bulk, headers = await client.call("POST", "/things/bulk", [{"name": f"n{i}"} for i in range(4)], token=token)
    assert st == 200
    last = int(headers["X-Smq-Position"])
    for name, value in (("SMQ_NATS_URL", settings.nats_url or ""), ("SMQ_NATS_STREAM", settings.stream),
                        ("SMQ_EVENTS_SUBJECT", settings.events_subject)):
        monkeypatch.setenv(name, value)

    events = await _tail(capsys, "--nats", "--aggregate", "thing", "--type", "created", "--count", "4")
    assert [e["aggregate_id"] for e in events] == [t["id"] for t in bulk["things"]]
    assert events[-1]["position"] == last and {e["data"]["secret"] for e in events} == {"***"}

    second = events[1]["position"]
    rest = await _tail(capsys, "--nats", "--after", str(second), "--aggregate", "thing", "--count", "2")
    assert [e["position"] for e in rest] == [e["position"] for e in events[2:]]
