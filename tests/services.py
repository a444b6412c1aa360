"""Finding the real servers for a test session: an environment variable first, then an
embedded server from a wheel, then testcontainers; only then is the test skipped."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

log = logging.getLogger("tests.services")


class Unavailable(Exception):
    pass


def _testcontainer(kind: str) -> tuple[str, object]:
    try:
        if kind == "postgres":
            from testcontainers.postgres import PostgresContainer

            pg = PostgresContainer("postgres:16-alpine", driver=None)
            pg.start()
            return pg.get_connection_url(), pg
        if kind == "redis":
            from testcontainers.redis import RedisContainer

            rc = RedisContainer("redis:7-alpine")
            rc.start()
            return f"redis://{rc.get_container_host_ip()}:{rc.get_exposed_port(6379)}/0", rc
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        nc = DockerContainer("nats:2.10-alpine").with_command("-js").with_exposed_ports(4222)
        nc.start()
        wait_for_logs(nc, "Server is ready")
        return f"nats://{nc.get_container_host_ip()}:{nc.get_exposed_port(4222)}", nc
    except Exception as exc:  # docker.errors.DockerException without an engine, ImportError, …
        raise Unavailable(f"{kind}: no environment variable, no embedded server, no docker ({exc})") from exc


@contextlib.contextmanager
def find_service(kind: str, workdir: Path) -> Iterator[str]:
    """The URL of a real server of ``kind`` (postgres, nats or redis) for the whole session."""
    env = {"postgres": "SMQ_TEST_DATABASE_URL", "nats": "SMQ_TEST_NATS_URL", "redis": "SMQ_TEST_REDIS_URL"}[kind]
    if os.environ.get(env):
        yield os.environ[env]
        return
    from infra.embedded import Embedded

    emb = Embedded()
    starter = {"postgres": lambda: emb.start_postgres(workdir, "postgres"),
               "nats": lambda: emb.start_nats(workdir), "redis": lambda: emb.start_redis(workdir)}[kind]
    url = failure = None
    for attempt in range(2):  # a second try: a start can fail once on a loaded machine
        try:
            url = starter()
            break
        except (RuntimeError, OSError, ImportError, subprocess.SubprocessError, psycopg.Error) as exc:
            failure = exc
            log.warning("embedded %s failed (attempt %d: %s)", kind, attempt + 1, exc)
            emb.stop()
            time.sleep(1)
    if url is None:
        log.warning("embedded %s failed (%s); trying testcontainers", kind, failure)
        url, container = _testcontainer(kind)
        try:
            yield url
        finally:
            container.stop()  # type: ignore[attr-defined]
        return
    try:
        yield url
    finally:
        emb.stop()
        shutil.rmtree(workdir, ignore_errors=True)
