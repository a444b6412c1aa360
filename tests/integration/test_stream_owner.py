"""A stream belongs to one store: a store that meets another store's stream, or a stream ahead
of its own head (a restored backup), publishes nothing, says so (ERROR, /health 503) and, after
`smq stream adopt --reset`, publishes its own events, which the views reach."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import psycopg
import pytest

from infra.settings import Settings
from service.runtime import Service
from tests.conftest import ADMIN, Client, env_of, eventually, fresh_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def other_database(pg_server: str) -> Iterator[str]:
    yield from fresh_database(pg_server)


async def _stream_state(svc: Service) -> tuple[int, int]:
    info = await svc.container.js.stream_info(svc.settings.stream)
    return info.state.messages, info.state.last_seq


async def _published_all(svc: Service) -> bool:
    """Every event of the store is on the stream (the stream's last position is the head)."""
    head = await svc.container.store.max_position()
    info = await svc.container.js.stream_info(svc.settings.stream)
    if info.state.messages == 0:
        return head == 0
    msg = await svc.container.js.get_msg(svc.settings.stream, info.state.last_seq)
    return int((msg.headers or {}).get("Smq-Position") or 0) == head


async def _write_users(client: Client, n: int) -> list[tuple[str, str]]:
    return [await client.user() for _ in range(n)]


async def _health(client: Client) -> tuple[int, Any]:
    st, body, _ = await client.call("GET", "/health")
    return st, body


def _adopt(settings: Settings, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMQ_")}
    env.update(env_of(settings), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "service.cli", "stream", "adopt", *flags], env=env,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


async def _refused_then_adopted(svc: Service, before: tuple[int, int], caplog: pytest.LogCaptureFixture,
                                what: str) -> None:
    """The running service refuses the stream (no message, ERROR naming it, /health 503 naming
    it); after `smq stream adopt --reset`, it publishes its own events and the views reach them."""
    s = svc.settings
    async with aiohttp.ClientSession() as session:
        client = Client(session, svc.url)

        async def health_names_stream() -> bool:
            st, body = await _health(client)
            return st == 503 and what in str(body["checks"].get("stream", ""))

        await eventually(health_names_stream, 20, "/health failing on the stream")
        await eventually(lambda: _true(any(r.levelno == logging.ERROR and s.stream in r.getMessage()
                                           and what in r.getMessage() for r in caplog.records)),
                         10, "an ERROR naming the stream")
        # A write meanwhile is stored but goes nowhere: the relay publishes nothing.
        await svc.container.store.command(svc.container.store.app.create_user, "late@example.com",
                                          "12345678", name="late")
        assert await _stream_state(svc) == before
        kept = _adopt(s, "--keep")
        assert kept.returncode == 1, kept.stderr
        assert "REFUSED" in kept.stdout
        assert await _stream_state(svc) == before

        done = _adopt(s, "--reset")
        assert done.returncode == 0, done.stdout + done.stderr
        await eventually(lambda: _published_all(svc), 30, "the store's events republished")
        await eventually(lambda: _health_ok(client), 20, "/health passing again")
        uid, token = await client.user()  # readable at once: the views reach the new events
        st, me, _ = await client.call("GET", "/users/profile", token=token)
        assert st == 200 and me["id"] == uid, me
        # Events written while refused reached the views too.
        st, late, _ = await client.call("POST", "/users/tokens/issue",
                                        {"identity": "late@example.com", "secret": "12345678"})
        assert st == 201, late
        st, body, _ = await client.call("GET", "/users/profile", token=late["access_token"])
        assert st == 200 and body["name"] == "late", body


async def _admin_token(client: Client) -> str:
    st, tok, _ = await client.call("POST", "/users/tokens/issue", {"identity": ADMIN[0], "secret": ADMIN[1]})
    assert st == 201, tok
    return str(tok["access_token"])


async def _true(value: bool) -> bool:
    return value


async def _health_ok(client: Client) -> bool:
    return (await _health(client))[0] == 200


@pytest.mark.timeout(180)
async def test_another_stores_stream_is_refused_until_adopted(
        settings: Settings, other_database: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    # Another store (another database) fills the stream first, further than our store will get.
    other = await Service.start(replace(settings, database_url=other_database,
                                        data_dir=settings.data_dir / "other"))
    try:
        async with aiohttp.ClientSession() as session:
            theirs = [uid for uid, _ in await _write_users(Client(session, other.url), 6)]
        await eventually(lambda: _published_all(other), 30, "the other store published")
        before = await _stream_state(other)
    finally:
        await other.stop()
    # Our fresh store meets it.
    svc = await Service.start(settings)
    try:
        assert await svc.container.store.max_position() < before[1]
        await _refused_then_adopted(svc, before, caplog, "another store")
        async with aiohttp.ClientSession() as session:  # none of the other store's users is ours
            client = Client(session, svc.url)
            admin = await _admin_token(client)
            st, users, _ = await client.call("GET", "/users?limit=100", token=admin)
            assert st == 200, users
            ids = {u["id"] for u in users["users"]}
            assert ids and not ids & set(theirs)
    finally:
        await svc.stop()


@pytest.mark.timeout(180)
async def test_a_stream_ahead_of_the_store_is_refused_until_adopted(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    svc = await Service.start(settings)
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, svc.url)
            kept = await _write_users(client, 2)
            head = await svc.container.store.max_position()
            lost = await _write_users(client, 3)
            await eventually(lambda: _published_all(svc), 30, "published")
    finally:
        await svc.stop()
    # The store is restored from a backup taken at ``head``: its later events are gone (the
    # views, in the same database, still show them).
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        conn.execute("delete from smq_events where notification_id > %s", (head,))
    svc = await Service.start(settings)
    try:
        before = await _stream_state(svc)
        await _refused_then_adopted(svc, before, caplog, "ahead")
        async with aiohttp.ClientSession() as session:
            client = Client(session, svc.url)
            # The views were rebuilt from this store's events: the lost users are gone from them,
            # the kept ones are there.
            admin = await _admin_token(client)
            st, _, _ = await client.call("GET", f"/users/{lost[0][0]}", token=admin)
            assert st == 404
            st, body, _ = await client.call("GET", "/users/profile", token=kept[0][1])
            assert st == 200 and body["id"] == kept[0][0], body
    finally:
        await svc.stop()


async def test_a_stream_of_an_older_version_is_taken_only_when_its_last_event_is_ours(
        settings: Settings) -> None:
    """Messages without the store's identity (an older relay wrote them): the last one must be
    the event this store holds at that position."""
    from infra.streamowner import FOREIGN, UNSTAMPED, inspect
    from projections.envelope import encode
    from service.container import Container

    c = await Container.start(settings)
    try:
        envs = await c.store.read(0, 100)
        assert envs
        for env in envs:  # as the older relay published them: no Smq-Store header
            await c.js.publish(env.subject(settings.events_subject), encode(env),
                               headers={"Nats-Msg-Id": str(env.position), "Smq-Position": str(env.position)})
        assert (await inspect(c.js, settings.stream, c.store)).status == UNSTAMPED
        last = envs[-1]
        other = msgspec.structs.replace(last, aggregate_id="00000000-0000-0000-0000-000000000001")
        await c.js.publish(last.subject(settings.events_subject), encode(other),
                           headers={"Nats-Msg-Id": f"x{last.position}", "Smq-Position": str(last.position)})
        assert (await inspect(c.js, settings.stream, c.store)).status == FOREIGN
    finally:
        await c.close()
