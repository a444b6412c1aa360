"""Admission control in a running service: a projector that falls behind holds the writers
(counted in /metrics), every command still succeeds, and the views' lag stays near the bound."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from infra.settings import Settings
from service.runtime import Service
from tests.conftest import Client
from tests.integration.test_metrics import _value
from workers import projector


async def test_a_slow_projector_slows_the_writers_visibly(settings: Settings,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    applied = projector.apply_batch

    async def slow(views: Any, batch: Any) -> list[int]:  # a projector slower than the writers
        await asyncio.sleep(0.15)
        return await applied(views, batch)
    monkeypatch.setattr(projector, "apply_batch", slow)
    svc = await Service.start(replace(settings, admission_lag=0.1))
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, svc.url)
            _, token = await client.user()

            async def page() -> str:
                async with session.get(svc.url + "/metrics") as r:
                    return await r.text()
            before = _value(await page(), "smq_admission_wait_seconds_count")
            positions: list[int] = []

            async def writer(n: int) -> None:
                for i in range(12):
                    st, body, headers = await client.call("POST", "/things", {"name": f"w{n}-{i}"}, token=token)
                    assert st == 201, body
                    positions.append(int(headers["X-Smq-Position"]))
            started = time.monotonic()
            await asyncio.gather(*(writer(n) for n in range(4)))
            held = _value(await page(), "smq_admission_wait_seconds_count") - before
            assert held > 0, "no command was held while the projector fell behind"
            assert len(positions) == 48 and time.monotonic() - started < 60
            # Every write is in the views at the end, read-your-writes as always.
            st, listed, headers = await client.call("GET", "/things?limit=100", token=token)
            assert st == 200 and listed["total"] == 48 and "X-Smq-Stale" not in headers
    finally:
        await svc.stop()
