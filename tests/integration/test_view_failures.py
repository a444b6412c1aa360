"""A view that cannot move is loud: one ERROR line, /health 503 naming it, metrics; and it
recovers by itself once the cause is gone."""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import psycopg
import pytest

from infra import metrics, viewstatus
from infra.settings import Settings
from service.runtime import Service
from tests.conftest import ADMIN, Client, eventually
from tests.integration.test_metrics import _value
from workers import projector

# A real fault in the users view's table: a trigger that refuses one name (with a DETAIL
# that must never be shown: the database puts row values there).
FAULT = """
create function refuse_boom() returns trigger language plpgsql as $$
begin
  if new.name = 'boom' then
    raise exception 'boom refused' using detail = 'secret-detail';
  end if;
  return new;
end $$;
create trigger refuse_boom before insert or update on users_view
  for each row execute function refuse_boom();
"""
CURE = "drop trigger refuse_boom on users_view; drop function refuse_boom();"


@pytest.fixture
async def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(projector, "RETRY_FIRST", 0.05)
    monkeypatch.setattr(projector, "RETRY_MAX", 0.4)


@contextlib.asynccontextmanager
async def _client(svc: Service) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session, svc.url)


async def _health(client: Client) -> tuple[int, dict[str, Any]]:
    st, body, _ = await client.call("GET", "/health")
    return st, body


async def _metrics(client: Client) -> str:
    async with client.session.get(client.base + "/metrics") as r:
        return await r.text()


async def test_a_failing_view_is_loud_once_and_recovers_by_itself(
        settings: Settings, fast_retries: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="smq.projector")
    svc = await Service.start(settings)
    try:
        async with _client(svc) as client:
            assert (await _health(client))[0] == 200
            with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
                conn.execute(FAULT)  # type: ignore[arg-type]
            identity = f"boom{uuid.uuid4().hex[:8]}@example.com"
            st, user, headers = await client.call("POST", "/users", {
                "name": "boom", "credentials": {"identity": identity, "secret": "12345678"}})
            assert st == 201, user
            position = int(headers["X-Smq-Position"])

            # /health: 503, naming the view, how far behind it is, the event and why.
            async def unhealthy() -> bool:
                st, body = await _health(client)
                return st == 503 and "users at" in body["checks"]["views"]
            await eventually(unhealthy, what="/health naming the failing view")
            _, body = await _health(client)
            views = body["checks"]["views"]
            assert body["status"] == "fail" and body["checks"]["store"] == "pass", body
            m = re.search(r"users at (\d+), (\d+) behind: failing on user\.created at (\d+)", views)
            assert m, views
            assert int(m.group(1)) < position and int(m.group(2)) >= 1 and int(m.group(3)) == position
            assert "boom refused" in views and "secret-detail" not in views

            # Retried with a growing pause; ERROR said once, not per retry.
            async def retried() -> bool:
                page = await _metrics(client)
                return _value(page, "smq_view_failures_total", {"view": "users"}) >= 4
            await eventually(retried, what="four tries of the users view")
            errors = [r for r in caplog.records
                      if r.name == "smq.projector" and r.levelno >= logging.ERROR]
            assert len(errors) == 1, [r.getMessage() for r in errors]
            line = errors[0].getMessage()
            for part in ("view users", f"position {position}", "user.created", "boom refused"):
                assert part in line, line
            assert "secret-detail" not in caplog.text
            page = await _metrics(client)
            assert _value(page, "smq_view_stalled", {"view": "users"}) == 1
            assert _value(page, "smq_view_lag_positions", {"view": "users"}) >= 1
            assert _value(page, "smq_view_stalled", {"view": "things"}) == 0

            # The cause goes away: it catches up by itself, and says so.
            with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
                conn.execute(CURE)  # type: ignore[arg-type]

            async def healthy() -> bool:
                return (await _health(client))[0] == 200
            await eventually(healthy, what="/health back to 200")
            page = await _metrics(client)
            assert _value(page, "smq_view_stalled", {"view": "users"}) == 0
            with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
                assert conn.execute("select count(*) from view_status").fetchone() == (0,)
            st, tokens, _ = await client.call("POST", "/users/tokens/issue",
                                              {"identity": ADMIN[0], "secret": ADMIN[1]})
            assert st == 201, tokens
            st, got, _ = await client.call("GET", f"/users/{user['id']}", token=tokens["access_token"])
            assert st == 200 and got["name"] == "boom", got
            assert any("apply again" in r.getMessage() for r in caplog.records
                       if r.name == "smq.projector" and r.levelno == logging.WARNING)
    finally:
        await svc.stop()


async def test_a_view_that_does_not_move_is_stalled(settings: Settings,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """No projector runs: the views fall behind without any failure recorded; /health
    says they are stalled once they have not moved for STALL_AFTER."""
    monkeypatch.setattr(viewstatus, "STALL_AFTER", 0.5)
    svc = await Service.start(settings, {"api", "relay"})
    try:
        async with _client(svc) as client:
            await client.call("POST", "/users", {"credentials": {
                "identity": f"s{uuid.uuid4().hex[:8]}@example.com", "secret": "12345678"}})

            async def stalled() -> bool:
                st, body = await _health(client)
                return st == 503 and "stalled" in body["checks"]["views"]
            await eventually(stalled, what="/health saying the views are stalled")
            _, body = await _health(client)
            assert re.search(r"users at \d+, \d+ behind: stalled for", body["checks"]["views"]), body
    finally:
        await svc.stop()


def test_the_stalled_gauge_and_failures_counter_exist() -> None:
    metrics.view_stalled("things", True)
    metrics.view_failure("things")
    text = metrics.exposition().decode()
    assert _value(text, "smq_view_stalled", {"view": "things"}) == 1
    assert _value(text, "smq_view_failures_total", {"view": "things"}) >= 1
    metrics.view_stalled("things", False)
