"""A graceful stop: `smq serve` exits 0 on SIGTERM while requests are in flight, and those
requests get complete answers (their things are there after a restart)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from infra.settings import Settings
from tests.conftest import env_of

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# Things per bulk create. Not 1000: one transaction of a couple of thousand events can hang in
# psycopg's pipeline mode (the eventsourcing recorder's insert; psycopg issue #685), and the
# group commit may join concurrent bulks into one transaction. See docs/deploy.md.
BULK, REQUESTS = 150, 3


async def _start(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service.cli", "serve", env=env, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 40)
    assert line, f"smq serve exited with {await proc.wait()} before listening"
    return proc, str(json.loads(line)["http"])


async def _head(database_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        row = await (await conn.execute("select coalesce(max(notification_id), 0) from smq_events")).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.timeout(120)
async def test_sigterm_finishes_requests_in_flight_and_exits_0(settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMQ_")}
    env.update(env_of(settings))
    db = settings.database_url or ""
    proc, base = await _start(env)
    answers: list[tuple[int, Any, float]] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
            creds = {"identity": "graceful@example.com", "secret": "12345678"}
            async with s.post(base + "/users", json={"name": "g", "credentials": creds}) as r:
                assert r.status == 201
            async with s.post(base + "/users/tokens/issue", json=creds) as r:
                token = (await r.json())["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            before = await _head(db)

            async def bulk(n: int) -> None:
                items = [{"name": f"bulk{n}-{i}"} for i in range(BULK)]
                async with s.post(base + "/things/bulk", json=items, headers=auth) as r:
                    answers.append((r.status, await r.json(), time.monotonic()))

            requests = [asyncio.create_task(bulk(n)) for n in range(REQUESTS)]
            # SIGTERM as soon as the first of them is committed: the others are being worked
            # on, and none is answered yet (or hardly).
            deadline = time.monotonic() + 30
            while await _head(db) == before:
                assert time.monotonic() < deadline, "no bulk create was committed within 30s"
                await asyncio.sleep(0.005)
            proc.send_signal(signal.SIGTERM)
            term = time.monotonic()
            await asyncio.wait_for(asyncio.gather(*requests), 60)
        code = await asyncio.wait_for(proc.wait(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0
    assert [st for st, _, _ in answers] == [200] * REQUESTS, [(st, body) for st, body, _ in answers if st != 200]
    assert all(body["total"] == BULK and len(body["things"]) == BULK for _, body, _ in answers)
    assert any(at > term for _, _, at in answers), "every answer came before the SIGTERM"
    ids = [t["id"] for _, body, _ in answers for t in body["things"]]

    proc, base = await _start(env)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
            async with s.post(base + "/users/tokens/issue", json=creds) as r:
                auth = {"Authorization": f"Bearer {(await r.json())['access_token']}"}
            async with s.get(base + "/things?limit=1", headers=auth) as r:
                assert r.status == 200
                assert (await r.json())["total"] == BULK * REQUESTS
            for tid in ids[::37]:
                async with s.get(f"{base}/things/{tid}", headers=auth) as r:
                    assert r.status == 200, await r.text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
