"""Policies: the owner of a channel assigns other users to it (``g_add`` to connect their things,
``c_list`` to see it, ``m_read``/``m_write`` for messages), lists and removes assignments."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from command_api import wire
from command_api.context import container, fresh, principal, run
from command_api.listing import ID
from domain import commands
from domain.app import Smq
from domain.policies import Policy
from projections.connections import NAME as CONNECTIONS_VIEW

routes = web.RouteTableDef()

SUBJECT = ID.replace("{id:", "{subject:")
OBJECT = ID.replace("{id:", "{object:")


class NewPolicy(msgspec.Struct):
    subject: str
    object: str
    actions: list[str]


def _shape(owner: Any, subject: Any, obj: Any, actions: list[str], created: Any, updated: Any) -> dict[str, Any]:
    return {"owner_id": str(owner), "subject": str(subject), "object": str(obj), "actions": list(actions),
            "created_at": wire.timestamp(created), "updated_at": wire.timestamp(updated)}


def policy_json(p: Policy) -> dict[str, Any]:
    return _shape(p.owner, p.subject, p.object_id, p.actions, p.created_at, p.updated_at)


@routes.post("/policies")
async def add_policy(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, NewPolicy)
    # The assignee's next reads see the channel at once.
    ran = await run(request, who, Smq.execute, commands.AssignPolicy(body.subject, body.object, body.actions),
                    touches=lambda p: [p.subject])
    return wire.json(policy_json(ran.result), status=201, headers=ran.headers)


@routes.get("/policies")
async def list_policies(request: web.Request) -> web.Response:
    """The policies on channels the caller owns or that name it, in the order they were made."""
    who = principal(request)
    offset, limit = wire.paging(request)
    where, args = "p.active", []
    if not who.admin:
        where += " and (c.owner = %s or p.subject = %s)"
        args = [who.user_id, who.user_id]
    sql_from = f"channel_policies p join channels_view c on c.id = p.object where {where}"
    c = container(request)
    await fresh(request, CONNECTIONS_VIEW, "channels")
    async with c.pool.connection() as conn, conn.transaction():
        await conn.execute("set transaction isolation level repeatable read, read only")
        total = (await (await conn.execute(f"select count(*) from {sql_from}", args)).fetchone() or (0,))[0]  # noqa: S608
        rows = await (await conn.execute(
            f"select p.owner, p.subject, p.object, p.actions, p.created_at, p.updated_at from {sql_from}"  # noqa: S608
            " order by p.created_pos limit %s offset %s", [*args, limit, offset])).fetchall()
    return wire.json({"limit": limit, "offset": offset, "total": total,
                      "policies": [_shape(*r) for r in rows]})


@routes.delete(f"/policies/{SUBJECT}/{OBJECT}")
async def delete_policy(request: web.Request) -> web.Response:
    who = principal(request)
    subject, obj = request.match_info["subject"], request.match_info["object"]
    ran = await run(request, who, Smq.execute, commands.RevokePolicy(subject, obj), touches=lambda p: [p.subject])
    return web.Response(status=204, headers=ran.headers)
