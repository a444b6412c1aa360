"""Fixtures: real PostgreSQL, NATS and Redis for the session; a fresh database, stream
and key prefix for each test, so tests never see each other's data."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from infra.settings import Settings
from tests.services import Unavailable, find_service

ADMIN = ("admin@example.com", "admin-secret-1")


def _session_service(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Not under pytest's own temporary folder: another pytest session starting on this machine
    # removes all but its three newest, and PostgreSQL shuts down when its data folder goes.
    workdir = Path(tempfile.mkdtemp(prefix=f"smq-test-{kind}-"))
    try:
        with find_service(kind, workdir) as url:
            yield url
    except Unavailable as exc:
        pytest.skip(str(exc))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _session_service("postgres", tmp_path_factory)


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _session_service("nats", tmp_path_factory)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _session_service("redis", tmp_path_factory)


@pytest.fixture(scope="session")
def mqtt_nats() -> Iterator[tuple[str, Any, Path]]:
    """One embedded nats-server 2.15 (the wheel's) serving MQTT with the auth callout, for the
    session's MQTT tests (the machine's NATS may be older: no callout): its service URL, its
    MQTT authorization (``infra.mqtt.MqttAuth``) and its data folder (the issuer seed file)."""
    from infra.embedded import Embedded

    workdir = Path(tempfile.mkdtemp(prefix="smq-test-mqtt-"))
    emb = Embedded()
    try:
        url = emb.start_nats(workdir, mqtt_port=0)
        yield url, emb.mqtt_auth, workdir
    finally:
        emb.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def mqtt_settings(settings: Settings, mqtt_nats: tuple[str, Any, Path]) -> AsyncIterator[Settings]:
    """A test's settings over the session's MQTT-serving NATS, MQTT authorization configured as
    for an external NATS (``SMQ_MQTT_*``); the messages root is MQTT's (``channels``)."""
    from infra.mqtt import ISSUER_SEED_FILE

    url, auth, workdir = mqtt_nats
    s = replace(settings, nats_url=url, messages_subject="channels",
                mqtt_issuer_seed_file=str(workdir / ISSUER_SEED_FILE), mqtt_sys_url=auth.sys_url,
                mqtt_url=auth.url)
    yield s
    await _forget(replace(s, redis_prefix=s.redis_prefix + "nothing-more:"))  # its stream


def fresh_database(pg_server: str) -> Iterator[str]:
    """A new database on the session's server, dropped afterwards."""
    name = "smq_t_" + secrets.token_hex(6)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    yield make_conninfo(pg_server, dbname=name)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def database_url(pg_server: str) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards."""
    yield from fresh_database(pg_server)


@pytest.fixture
async def settings(database_url: str, nats_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings of one test: its own database, stream, subjects and Redis keys, removed afterwards."""
    tag = "t" + secrets.token_hex(4)
    s = replace(
        Settings(), http_host="127.0.0.1", http_port=0, data_dir=tmp_path / "data",
        database_url=database_url, nats_url=nats_url, redis_url=redis_url,
        jwt_secret="test-secret-" + "x" * 40, admin_identity=ADMIN[0], admin_secret=ADMIN[1],
        stream=f"EV_{tag}", events_subject=f"{tag}.events", messages_subject=f"{tag}.channels",
        redis_prefix=f"{tag}:", rw_wait=10.0,
    )
    yield s
    await _forget(s)


async def _forget(s: Settings) -> None:
    """Remove the test's stream and Redis keys from the shared servers."""
    import nats
    from redis.asyncio import Redis

    nc = await nats.connect(s.nats_url, connect_timeout=5)
    try:
        await nc.jetstream().delete_stream(s.stream)
    except Exception:  # noqa: BLE001 - a test that never started the service made none
        pass
    await nc.close()
    r = Redis.from_url(s.redis_url or "")
    keys = [k async for k in r.scan_iter(match=f"{s.redis_prefix}*", count=1000)]
    if keys:
        await r.delete(*keys)
    await r.aclose()


def env_of(s: Settings) -> dict[str, str]:
    """The same settings as environment variables, for a child process."""
    return {
        "SMQ_DATABASE_URL": s.database_url or "", "SMQ_NATS_URL": s.nats_url or "",
        "SMQ_REDIS_URL": s.redis_url or "", "SMQ_JWT_SECRET": s.jwt_secret or "",
        "SMQ_NATS_STREAM": s.stream, "SMQ_EVENTS_SUBJECT": s.events_subject,
        "SMQ_MESSAGES_SUBJECT": s.messages_subject, "SMQ_REDIS_PREFIX": s.redis_prefix,
        "SMQ_DATA_DIR": str(s.data_dir), "SMQ_HTTP_PORT": "0",
        "SMQ_ADMIN_IDENTITY": s.admin_identity or "", "SMQ_ADMIN_SECRET": s.admin_secret or "",
    }


class Client:
    """A small HTTP client for tests, with the service's base URL."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def call(self, method: str, path: str, json: Any = None, token: str | None = None,
                   headers: dict[str, str] | None = None, data: Any = None,
                   allow_redirects: bool = True) -> tuple[int, Any, Any]:
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.base + path, json=json, data=data, headers=h,
                                        allow_redirects=allow_redirects) as r:
            raw = await r.read()
            try:
                body = await r.json(content_type=None) if raw else None
            except ValueError:
                body = raw
            return r.status, body, r.headers

    async def user(self, identity: str | None = None, secret: str = "12345678", name: str = "") -> tuple[str, str]:
        """Create a user and return (user id, access token)."""
        identity = identity or f"u{uuid.uuid4().hex[:10]}@example.com"
        st, body, _ = await self.call("POST", "/users", {"name": name, "credentials": {"identity": identity, "secret": secret}})
        assert st == 201, body
        st, tok, _ = await self.call("POST", "/users/tokens/issue", {"identity": identity, "secret": secret})
        assert st == 201, tok
        return body["id"], tok["access_token"]


@pytest.fixture
async def container(settings: Settings) -> AsyncIterator[Any]:
    """The composition root alone, without HTTP or workers (tests drive the parts)."""
    from service.container import Container

    c = await Container.start(settings)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Any]:
    from service.runtime import Service

    svc = await Service.start(settings)
    try:
        yield svc
    finally:
        await svc.stop()


@pytest.fixture
async def client(service: Any) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session, service.url)


async def eventually(check: Callable[[], Awaitable[bool]], bound: float = 15.0, what: str = "condition") -> None:
    """Wait for a condition with a bound (never a bare sleep)."""
    deadline = time.monotonic() + bound
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {bound}s")
        await asyncio.sleep(0.02)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run in which every test was skipped (no server could be found) is a failed run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    passed = len(reporter.stats.get("passed", []))
    skipped = len(reporter.stats.get("skipped", []))
    if passed == 0 and skipped > 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
