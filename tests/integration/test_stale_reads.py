"""A read whose views did not reach the reader's position within the read-your-writes bound
says so (``X-Smq-Stale``, ``X-Smq-After``, ``Warning: 110``) and is counted in /metrics;
a read that is fresh carries none of it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp

from infra.settings import Settings
from service.runtime import Service
from tests.conftest import Client, eventually
from tests.integration.test_metrics import _value


@contextlib.asynccontextmanager
async def _serving(settings: Settings, roles: set[str]) -> AsyncIterator[Client]:
    svc = await Service.start(settings, roles)
    try:
        async with aiohttp.ClientSession() as session:
            yield Client(session, svc.url)
    finally:
        await svc.stop()


async def _stale_count(client: Client, view: str) -> float:
    async with client.session.get(client.base + "/metrics") as r:
        return _value(await r.text(), "smq_stale_reads_total", {"view": view})


async def test_a_read_behind_the_callers_write_says_so_and_is_counted(settings: Settings) -> None:
    # No projector: the views stay where they are while the store moves on.
    async with _serving(replace(settings, rw_wait=0.3), {"api", "relay"}) as client:
        _, token = await client.user()
        st, thing, headers = await client.call("POST", "/things", {"name": "held"}, token=token)
        assert st == 201, thing
        position = int(headers["X-Smq-Position"])
        before = await _stale_count(client, "things")

        st, page, headers = await client.call("GET", "/things", token=token)
        assert st == 200, page
        assert page["total"] == 0  # the stale page: the view does not have the thing yet
        view, _, held = headers["X-Smq-Stale"].partition("=")
        assert view == "things" and int(held) < position, headers
        assert int(headers["X-Smq-After"]) == position
        assert headers["Warning"] == '110 - "Response is Stale"'
        assert "X-Smq-Stale" in headers["Access-Control-Expose-Headers"]

        # A 404 that only comes from the view being behind says so too.
        st, body, headers = await client.call("GET", f"/things/{thing['id']}", token=token)
        assert st == 404 and headers["X-Smq-Stale"].startswith("things="), (st, body)

        # Another user (no write of its own) asking for the position explicitly.
        _, other = await client.user()
        st, _, headers = await client.call("GET", "/channels", token=other,
                                           headers={"X-Smq-After": str(position)})
        assert st == 200 and headers["X-Smq-Stale"].startswith("channels="), headers

        async def counted() -> bool:  # /metrics of the API process, counted as it answered
            return await _stale_count(client, "things") >= before + 2
        await eventually(counted, bound=5, what="smq_stale_reads_total{view=things} +2")

    # With the projector (and the usual bound), the same read waits for the write: not stale.
    async with _serving(settings, {"api", "relay", "projector"}) as client:
        st, page, headers = await client.call("GET", "/things", token=token,
                                              headers={"X-Smq-After": str(position)})
        assert st == 200 and page["total"] == 1, page
        assert "X-Smq-Stale" not in headers and "Warning" not in headers, headers
        assert uuid.UUID(page["things"][0]["id"]) == uuid.UUID(thing["id"])
