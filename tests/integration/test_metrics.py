"""/metrics, request ids and JSON access logs."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

from domain.provisioning import STEPS
from infra import jsonlog, metrics
from tests.conftest import Client


def _value(text: str, name: str, labels: dict[str, str] | None = None) -> float:
    """A sample's value in a Prometheus text page (0 when absent)."""
    want = labels or {}
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in want.items()):
            return float(m.group(3))
    return 0.0


async def _page(client: Client) -> str:
    st, _, headers = await client.call("GET", "/metrics")
    assert st == 200 and headers["Content-Type"].startswith("text/plain")
    async with client.session.get(client.base + "/metrics") as r:
        return await r.text()


async def test_http_and_store_metrics(client: Client) -> None:
    before = await _page(client)
    uid, token = await client.user()
    for _ in range(3):
        assert (await client.call("GET", f"/users/{uid}", token=token))[0] == 200
    assert (await client.call("GET", "/things/not-a-uuid", token=token))[0] == 404
    assert (await client.call("GET", "/no/such/path"))[0] == 404
    after = await _page(client)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, labels) - _value(before, name, labels)

    # By the route's pattern, never the raw path (no ids in label values).
    assert delta("smq_http_requests_total", method="GET", route="/users/{id}", status="200") == 3
    assert delta("smq_http_requests_total", method="POST", route="/users", status="201") >= 1
    assert delta("smq_http_requests_total", method="GET", route="unmatched", status="404") >= 2
    assert uid not in after
    assert delta("smq_http_request_duration_seconds_count", method="GET", route="/users/{id}") == 3
    # The user's creation went through the group committer: one transaction at least.
    assert delta("smq_store_transaction_seconds_count") >= 1
    assert delta("smq_store_transaction_commands_sum") >= 1
    assert _value(after, "smq_store_position") >= 1
    for name in ("smq_relay_lag_positions", "smq_view_lag_positions", "smq_saga_steps_total",
                 "smq_saga_compensations_total"):
        assert f"# TYPE {name.removesuffix('_total')}" in after, name


def test_position_gauges() -> None:
    metrics.forget_positions()
    metrics.store_position(10)
    metrics.relay_position(7)
    metrics.view_position("things", 4)
    text = metrics.exposition().decode()
    assert _value(text, "smq_relay_lag_positions") == 3
    assert _value(text, "smq_view_lag_positions", {"view": "things"}) == 6
    metrics.store_position(12)
    metrics.view_position("things", 12)
    text = metrics.exposition().decode()
    assert _value(text, "smq_relay_lag_positions") == 5
    assert _value(text, "smq_view_lag_positions", {"view": "things"}) == 0
    metrics.forget_positions()


async def test_saga_counters(client: Client) -> None:
    before = metrics.exposition().decode()
    _, token = await client.user()
    st, body, _ = await client.call("POST", "/mapping", {"external_id": "aa:bb:cc:00:11:22",
                                                         "external_key": "key-1234"}, token=token)
    assert st == 201, body
    after = metrics.exposition().decode()
    ok = {s: _value(after, "smq_saga_steps_total", {"step": s, "outcome": "ok"})
          - _value(before, "smq_saga_steps_total", {"step": s, "outcome": "ok"})
          for s in _steps(after)}
    # Made whole in one transaction, each step is still counted once, as one by one.
    assert ok == dict.fromkeys(STEPS, 1)


def _steps(text: str) -> set[str]:
    return set(re.findall(r'smq_saga_steps_total\{[^}]*step="([^"]+)"', text))


async def test_request_id_is_answered_and_becomes_the_correlation_id(client: Client, service: Any) -> None:
    uid, token = await client.user()
    st, _, headers = await client.call("PATCH", f"/users/{uid}", {"name": "n1"}, token=token,
                                       headers={"X-Request-ID": "req-abc.123"})
    assert st == 200 and headers["X-Request-ID"] == "req-abc.123"
    events = await service.container.store.read(int(headers["X-Smq-Position"]) - 1, 1)
    assert events[0].correlation_id == "req-abc.123" and events[0].causation_id == "req-abc.123"
    # No id, or one that is not sane: a fresh one, on errors too.
    for sent in ({}, {"X-Request-ID": "x" * 500}, {"X-Request-ID": "bad id\"with quotes"}):
        st, _, headers = await client.call("GET", "/nope", headers=sent)
        assert st == 404
        rid = headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f-]{36}", rid), rid


async def test_access_log_is_one_json_line_without_secrets(client: Client) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(jsonlog.JsonFormatter())
    access = logging.getLogger("smq.access")
    old_level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        uid, token = await client.user(secret="very-secret-1")
        st, _, headers = await client.call("GET", f"/users/{uid}", token=token,
                                           headers={"X-Request-ID": "trace-42"})
        assert st == 200
    finally:
        access.removeHandler(handler)
        access.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [r for r in lines if r.get("request_id") == "trace-42"]
    assert len(mine) == 1
    rec = mine[0]
    assert rec["method"] == "GET" and rec["route"] == "/users/{id}" and rec["status"] == 200
    assert rec["duration_ms"] >= 0 and rec["level"] == "INFO" and rec["logger"] == "smq.access"
    text = stream.getvalue()
    assert token not in text and "very-secret-1" not in text and "Bearer" not in text
    assert uid not in text  # the route's pattern, not the path


def test_json_formatter_keeps_one_line() -> None:
    record = logging.LogRecord("smq.test", logging.WARNING, __file__, 1,
                               'a "quoted" message\nwith a newline and \\ backslash %s', ("x",), None)
    line = jsonlog.JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["msg"] == 'a "quoted" message\nwith a newline and \\ backslash x'
    assert parsed["level"] == "WARNING"
    try:
        raise ValueError('boom "x"')
    except ValueError:
        import sys
        record.exc_info = sys.exc_info()
    parsed = json.loads(jsonlog.JsonFormatter().format(record))
    assert 'boom "x"' in parsed["exc"]
