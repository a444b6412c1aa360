"""/health: answers 200 only when the store, the bus and the views are reachable, and the
Redis views whole (503 ``"views_redis": "rebuilding: …"`` while the projector rebuilds one),
and, when MQTT authorization is on, the MQTT listener takes connections and an authorizer
answers (``off: …`` when it is not configured: not a failure)."""

from __future__ import annotations

import asyncio
import contextlib

import nats.errors
from aiohttp import web

from command_api import wire
from command_api.context import container
from infra import bus as nats_bus
from infra import mqtt, streamowner, viewstatus
from projections import catalogue
from projections.redisview import rebuilding

routes = web.RouteTableDef()
VERSION = "0.1.0"


class CheckFailed(Exception):
    """A check that failed for a reason worth showing (its message, which has no secrets)."""


class Off(Exception):  # noqa: N818 - not an error: a part the operator did not configure
    """A part that is off by configuration: shown as ``off: …``, the service still healthy."""


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    c = container(request)
    checks: dict[str, str] = {}

    async def check(name: str, probe) -> None:  # noqa: ANN001
        try:
            await asyncio.wait_for(probe(), 2.0)
            checks[name] = "pass"
        except CheckFailed as exc:
            checks[name] = f"fail: {exc}"
        except Off as exc:
            checks[name] = str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure is a failed check
            checks[name] = f"fail: {type(exc).__name__}"

    async def sql() -> None:
        async with c.pool.connection() as conn:
            await conn.execute("select 1")

    async def bus() -> None:
        if not c.nc.is_connected:
            raise ConnectionError("nats is not connected")
        await c.js.stream_info(c.settings.stream)

    async def stream_config() -> None:  # the stream as configured (replicas, subjects, limits, …)
        s = c.settings
        info = await c.js.stream_info(s.stream)
        wanted = nats_bus.stream_config(s.stream, s.events_subject, s.stream_max_age, s.stream_max_bytes,
                                   s.stream_replicas)
        if found := nats_bus.differences(info.config, wanted):
            raise CheckFailed("; ".join(found))

    async def views() -> None:  # every view moves: none failing on an event, none stalled
        names = [v.name for v in catalogue.SQL_VIEWS]
        stalls = c.extras.setdefault("view_stalls", viewstatus.Stalls())
        found = await viewstatus.standings(c.pool, c.redis, names, catalogue.redis_positions(c.settings.redis_prefix),
                                           await c.store.max_position())
        if problems := viewstatus.problems(found, stalls):
            raise CheckFailed("; ".join(problems))

    async def mqtt_broker() -> None:  # an MQTT listener takes connections (a cluster: any node)
        if c.mqtt is None:
            raise Off(mqtt.OFF)
        if not c.mqtt.brokers:
            raise CheckFailed("no MQTT address to check (SMQ_MQTT_BROKER, SMQ_MQTT_URL)")
        tries = await asyncio.gather(*(mqtt.reachable(b) for b in c.mqtt.brokers), return_exceptions=True)
        if all(isinstance(t, Exception) for t in tries):
            raise CheckFailed(f"MQTT port {mqtt.host_port(c.mqtt.brokers)} not reachable")

    async def mqtt_authorizer() -> None:  # an authorizer answers the server's questions
        if c.mqtt is None:
            raise Off(mqtt.OFF)
        try:
            reply = await c.nc.request(mqtt.HEALTH_SUBJECT, b"", timeout=1.0)
        except nats.errors.NoRespondersError:
            raise CheckFailed(f"no authorizer subscribed to {mqtt.AUTH_SUBJECT}") from None
        except nats.errors.TimeoutError:
            raise CheckFailed("the authorizer does not answer") from None
        if reply.data != b"ok":  # its revoker cannot close the sessions whose rights ended
            raise CheckFailed(reply.data.decode(errors="replace"))

    await asyncio.gather(check("store", c.store.max_position), check("bus", bus),
                         check("views_sql", sql), check("views_redis", c.redis.ping),
                         check("views", views), check("stream_config", stream_config),
                         check("mqtt_broker", mqtt_broker), check("mqtt_authorizer", mqtt_authorizer))
    if checks["views_redis"] == "pass":  # reachable; but is every Redis view whole?
        with contextlib.suppress(Exception):
            checks["views_redis"] = await rebuilding(c.redis, c.settings.redis_prefix,
                                                               catalogue.REDIS_VIEW_NAMES) or "pass"
    checks["stream"] = await streamowner.health(c)  # refused: another store's, or ahead of ours
    ok = all(v == "pass" or v.startswith("off:") for v in checks.values())
    return wire.json({"status": "pass" if ok else "fail", "version": VERSION,
                      "description": "smq-es: event-sourced SuperMQ API", "checks": checks},
                     status=200 if ok else 503)
