"""/health: answers 200 only when the store, the bus and the views are reachable."""

from __future__ import annotations

import asyncio

from aiohttp import web

from command_api import wire
from command_api.context import container
from infra import streamowner

routes = web.RouteTableDef()
VERSION = "0.1.0"


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    c = container(request)
    checks: dict[str, str] = {}

    async def check(name: str, probe) -> None:  # noqa: ANN001
        try:
            await asyncio.wait_for(probe(), 2.0)
            checks[name] = "pass"
        except Exception as exc:  # noqa: BLE001 - any failure is a failed check
            checks[name] = f"fail: {type(exc).__name__}"

    async def sql() -> None:
        async with c.pool.connection() as conn:
            await conn.execute("select 1")

    async def bus() -> None:
        if not c.nc.is_connected:
            raise ConnectionError("nats is not connected")
        await c.js.stream_info(c.settings.stream)

    await asyncio.gather(check("store", c.store.max_position), check("bus", bus),
                         check("views_sql", sql), check("views_redis", c.redis.ping))
    checks["stream"] = await streamowner.health(c)  # refused: another store's, or ahead of ours
    ok = all(v == "pass" for v in checks.values())
    return wire.json({"status": "pass" if ok else "fail", "version": VERSION,
                      "description": "smq-es: event-sourced SuperMQ API", "checks": checks},
                     status=200 if ok else 503)
