"""PostgreSQL pool sizes are settings (SMQ_PG_STORE_POOL, SMQ_PG_VIEWS_POOL), by role when
unset: a service under load holds no more connections to its database than they allow."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import aiohttp
import psycopg
import pytest

from infra.settings import Settings
from service.container import POOL_SHARES, pool_sizes
from service.runtime import Service
from tests.conftest import ADMIN


def test_the_settings_are_read_and_checked() -> None:
    s = Settings.from_env({"SMQ_PG_STORE_POOL": "3", "SMQ_PG_VIEWS_POOL": "2"})
    assert (s.pg_store_pool, s.pg_views_pool) == (3, 2)
    assert pool_sizes(s, {"api"}) == (3, 2)
    with pytest.raises(ValueError, match="SMQ_PG_VIEWS_POOL"):
        Settings.from_env({"SMQ_PG_VIEWS_POOL": "0"})
    # Unset: each role's share, summed over the roles of the process.
    assert pool_sizes(Settings(), {"relay"}) == POOL_SHARES["relay"]
    api, relay = POOL_SHARES["api"], POOL_SHARES["relay"]
    assert pool_sizes(Settings(), {"api", "relay"}) == (api[0] + relay[0], api[1] + relay[1])


async def _connections(admin: psycopg.AsyncConnection) -> int:
    row = await (await admin.execute(
        "select count(*) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
    )).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.timeout(120)
async def test_a_service_holds_at_most_its_pools_connections(settings: Settings) -> None:
    small = replace(settings, pg_store_pool=2, pg_views_pool=2)
    svc = await Service.start(small)
    seen: list[int] = []
    try:
        assert svc.container.pool.max_size == 2
        assert svc.container.store.app.recorder.datastore.pool.max_size == 2
        async with await psycopg.AsyncConnection.connect(settings.database_url or "", autocommit=True) as admin, \
                aiohttp.ClientSession() as http:
            async def watch() -> None:
                while True:
                    seen.append(await _connections(admin))
                    await asyncio.sleep(0.01)

            async with http.post(svc.url + "/users/tokens/issue",
                                 json={"identity": ADMIN[0], "secret": ADMIN[1]}) as r:
                token = (await r.json())["access_token"]
            auth = {"Authorization": f"Bearer {token}"}

            async def create(i: int) -> None:
                async with http.post(svc.url + "/things", json={"name": f"p{i}-{uuid.uuid4().hex[:6]}"},
                                     headers=auth) as r:
                    assert r.status == 201, await r.text()

            async def read() -> None:
                async with http.get(svc.url + "/things?limit=5", headers=auth) as r:
                    assert r.status == 200, await r.text()

            watcher = asyncio.create_task(watch())
            try:
                for _ in range(3):
                    await asyncio.gather(*(create(i) for i in range(20)), *(read() for _ in range(30)))
            finally:
                watcher.cancel()
    finally:
        await svc.stop()
    # The two pools, and the relay's LISTEN and lease connections.
    assert seen and max(seen) <= 2 + 2 + 2, max(seen)
