"""Connections: connect and disconnect things and channels (one pair or a cross product, all or
nothing), and list them from either side."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from aiohttp import web

from command_api import docsql, wire
from command_api.channels import CHANNELS
from command_api.context import container, fresh, principal, run
from command_api.errors import BadRequest
from command_api.filters import Filters
from command_api.listing import ID, Table, total_and_page, visible
from command_api.things import THINGS
from domain import commands
from domain.app import Smq
from domain.connections import Connection
from domain.errors import NotFound
from projections.connections import NAME as CONNECTIONS_VIEW

routes = web.RouteTableDef()

CID = ID.replace("{id:", "{cid:")
TID = ID.replace("{id:", "{tid:")


class ConnectOne(msgspec.Struct):
    actions: list[str] | None = None


class ConnectMany(msgspec.Struct):
    """Ours ``{channel_ids, thing_ids}``, upstream's ``{group_ids, client_ids}`` or later
    clients' ``{objects, subjects}``."""

    channel_ids: list[str] | None = None
    thing_ids: list[str] | None = None
    group_ids: list[str] | None = None
    client_ids: list[str] | None = None
    objects: list[str] | None = None
    subjects: list[str] | None = None
    actions: list[str] | None = None

    def pairs(self) -> tuple[list[str], list[str]]:
        channels = next((v for v in (self.channel_ids, self.group_ids, self.objects) if v is not None), None)
        things = next((v for v in (self.thing_ids, self.client_ids, self.subjects) if v is not None), None)
        if channels is None or things is None:
            raise BadRequest("channel_ids and thing_ids are required")
        return channels, things


def policy_json(conn: Connection) -> dict[str, Any]:
    """A connection as the guide shows it: the thing is the subject, the channel the object."""
    return {"owner_id": str(conn.owner), "subject": str(conn.thing_id), "object": str(conn.channel_id),
            "actions": list(conn.actions), "created_at": wire.timestamp(conn.created_at),
            "updated_at": wire.timestamp(conn.updated_at)}


def _path_id(request: web.Request, name: str, what: str) -> UUID:
    try:
        return UUID(request.match_info[name])
    except ValueError as exc:
        raise NotFound(f"{what} not found") from exc


def _ids_of(conns: list[Connection]) -> set[str]:
    """Where a change of these connections is recorded, for the access checks that follow."""
    return {str(i) for conn in conns for i in (conn.channel_id, conn.thing_id)}


async def _connect_one(request: web.Request) -> web.Response:
    who = principal(request)
    cid, tid = _path_id(request, "cid", "channel"), _path_id(request, "tid", "thing")
    body = await wire.body(request, ConnectOne, optional=True)
    ran = await run(request, who, Smq.execute, commands.Connect([cid], [tid], body.actions),
                    touches=lambda _: [cid, tid])
    return wire.json(policy_json(ran.result[0]), status=201, headers=ran.headers)


@routes.put(f"/channels/{CID}/things/{TID}")
async def put_connection(request: web.Request) -> web.Response:
    return await _connect_one(request)


@routes.post(f"/channels/{CID}/things/{TID}")
async def post_connection(request: web.Request) -> web.Response:
    return await _connect_one(request)


@routes.delete(f"/channels/{CID}/things/{TID}")
async def delete_connection(request: web.Request) -> web.Response:
    who = principal(request)
    cid, tid = _path_id(request, "cid", "channel"), _path_id(request, "tid", "thing")
    ran = await run(request, who, Smq.execute, commands.Disconnect([cid], [tid]), touches=lambda _: [cid, tid])
    return web.Response(status=204, headers=ran.headers)


@routes.post("/connect")
async def connect_many(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, ConnectMany)
    channels, things = body.pairs()
    ran = await run(request, who, Smq.execute, commands.Connect(channels, things, body.actions),
                    touches=_ids_of)
    return web.Response(status=201, headers=ran.headers)


@routes.post("/disconnect")
async def disconnect_many(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, ConnectMany)
    channels, things = body.pairs()
    ran = await run(request, who, Smq.execute, commands.Disconnect(channels, things), touches=_ids_of)
    return web.Response(status=204, headers=ran.headers)


async def connected_page(request: web.Request, parent: Table, parent_id: UUID, parent_column: str,
                         listed: Table, listed_column: str) -> web.Response:
    """``{limit, offset, total, <plural>}``: the entities connected to a parent the caller sees,
    those the caller may see itself, under the usual filters, in the order of connection."""
    who = principal(request)
    offset, limit = wire.paging(request)
    filters, filter_args = Filters.of(request).sql()
    pcond, pargs = visible(parent, who)
    cond, args = visible(listed, who)
    where = [cond, *filters]
    args = [*args, *filter_args]
    sql_from = (f"{listed.table} join (select {listed_column} as conn_item, created_pos as conn_pos"  # noqa: S608
                f" from connections where {parent_column} = %s and active) k on k.conn_item = id"
                f" where {' and '.join(where)}")
    args = [parent_id, *args]
    c = container(request)
    await fresh(request, CONNECTIONS_VIEW, *{parent.view, listed.view, *parent.also_views, *listed.also_views})
    async with c.pool.connection() as conn, conn.transaction():
        await conn.execute("set transaction isolation level repeatable read, read only")
        seen = await (await conn.execute(
            f"select 1 from {parent.table} where id = %s and {pcond}", [parent_id, *pargs])).fetchone()  # noqa: S608
        if seen is None:
            raise NotFound(f"{parent.what} not found")
        total, docs = await total_and_page(
            conn, f"select count(*) from {sql_from}", args,  # noqa: S608
            f"select id as page_id, conn_pos as pos from {sql_from} order by conn_pos limit %s offset %s",  # noqa: S608
            [*args, limit, offset], listed.table, listed.doc)
    return wire.raw_json(docsql.page(limit, offset, total, listed.plural, docs))


@routes.get(f"/channels/{CID}/things")
async def things_of_channel(request: web.Request) -> web.Response:
    return await connected_page(request, CHANNELS, _path_id(request, "cid", "channel"), "channel_id",
                                THINGS, "thing_id")


@routes.get(f"/things/{TID}/channels")
async def channels_of_thing(request: web.Request) -> web.Response:
    return await connected_page(request, THINGS, _path_id(request, "tid", "thing"), "thing_id",
                                CHANNELS, "channel_id")
