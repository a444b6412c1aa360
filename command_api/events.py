"""The audit log over HTTP: every event after a position, for administrators; one entity's
history for those who own it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from aiohttp import web

from command_api import wire
from command_api.context import container, fresh, principal
from command_api.errors import BadRequest
from command_api.listing import ID
from domain.errors import Forbidden, NotFound

routes = web.RouteTableDef()
COLUMNS = ("position, aggregate, aggregate_id, version, type, occurred_at, actor, correlation_id,"
           " causation_id, data")
MAX_LIMIT = 1000
# Who owns an entity of each kind, for its history: (aggregate name, view table).
OWNED = {"things": ("thing", "things_view"), "channels": ("channel", "channels_view")}


def event_json(r: tuple[Any, ...]) -> dict[str, Any]:
    pos, aggregate, agg_id, version, etype, occurred, actor, corr, cause, data = r
    return {"position": pos, "aggregate": aggregate, "aggregate_id": str(agg_id), "version": version,
            "type": etype, "occurred_at": wire.timestamp(occurred), "actor": actor,
            "correlation_id": corr, "causation_id": cause, "data": data}


def _time(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"{name} must be an RFC 3339 time") from exc
    if value.tzinfo is None:
        raise BadRequest(f"{name} must carry a time zone")
    return value


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    return wire.integer(request.query.get(name, str(default)), name, low, high)


async def _page(request: web.Request, where: list[str], args: list[Any]) -> web.Response:
    after = _int(request, "after", 0, 0, 2**62)
    limit = _int(request, "limit", 100, 1, MAX_LIMIT)
    where, args = [*where, "position > %s"], [*args, after]
    for name, column in (("aggregate", "aggregate"), ("type", "type"), ("actor", "actor"),
                         ("correlation_id", "correlation_id")):
        value = request.query.get(name)
        if value is not None:
            where.append(f"{column} = %s")
            args.append(value)
    since, until = _time(request, "from"), _time(request, "to")
    if since is not None:
        where.append("occurred_at >= %s")
        args.append(since)
    if until is not None:
        where.append("occurred_at < %s")
        args.append(until)
    c = container(request)
    await fresh(request, "events")
    async with c.pool.connection() as conn:
        rows = await (await conn.execute(
            f"select {COLUMNS} from events_view where {' and '.join(where)}"  # noqa: S608
            " order by position limit %s", [*args, limit])).fetchall()
    events = [event_json(r) for r in rows]
    return wire.json({"after": after, "limit": limit, "next": events[-1]["position"] if events else after,
                      "events": events})


@routes.get("/events")
async def all_events(request: web.Request) -> web.Response:
    if not principal(request).admin:
        raise Forbidden("only administrators read the whole event log")
    return await _page(request, [], [])


async def _entity_id(request: web.Request) -> UUID:
    try:
        return UUID(request.match_info["id"])
    except ValueError as exc:
        raise NotFound("not found") from exc


@routes.get(f"/users/{ID}/events")
async def user_events(request: web.Request) -> web.Response:
    who = principal(request)
    uid = await _entity_id(request)
    if uid != who.user_id and not who.admin:
        raise NotFound("user not found")
    return await _page(request, ["aggregate = 'user'", "aggregate_id = %s"], [uid])


async def _owned_events(request: web.Request, kind: str) -> web.Response:
    who = principal(request)
    eid = await _entity_id(request)
    aggregate, table = OWNED[kind]
    if not who.admin:
        c = container(request)
        await fresh(request, kind, "events")
        async with c.pool.connection() as conn:
            # Its row, or (removed: no row) the owner its creation names: a removed one's
            # history stays its owner's to read.
            row = await (await conn.execute(
                f"select 1 from {table} where id = %s and owner = %s"  # noqa: S608 - ours
                " union all select 1 from events_view where aggregate_id = %s and aggregate = %s"
                " and version = 1 and data->>'owner' = %s limit 1",
                (eid, who.user_id, eid, aggregate, str(who.user_id)))).fetchone()
        if row is None:
            raise NotFound(f"{aggregate} not found")
    return await _page(request, ["aggregate = %s", "aggregate_id = %s"], [aggregate, eid])


@routes.get(f"/things/{ID}/events")
async def thing_events(request: web.Request) -> web.Response:
    return await _owned_events(request, "things")


@routes.get(f"/channels/{ID}/events")
async def channel_events(request: web.Request) -> web.Response:
    return await _owned_events(request, "channels")
