"""Channels: create (one or in bulk), read, list, update, enable and disable, share."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from command_api import docsql, entities, wire
from command_api.context import principal
from command_api.listing import ID, Table, get_one, list_page
from command_api.things import Share
from domain import commands
from domain.channels import Channel

routes = web.RouteTableDef()

CHANNELS = Table(view="channels", table="channels_view", shares="channel_shares",
                 share_column="channel_id",
                 # The shape of _shape below, rendered by PostgreSQL.
                 doc=docsql.obj(("id", "uuid", "id"), ("owner_id", "uuid", "owner"), ("name", "text", "name"),
                                ("description", "text?", "description"), ("metadata", "json?", "metadata"),
                                ("created_at", "time", "created_at"), ("updated_at", "time", "updated_at"),
                                ("status", "text", "status")),
                 what="channel", plural="channels",
                 # Users assigned to a channel with c_list see it too (command_api.policies).
                 also_visible="select object from channel_policies where subject = %s and active"
                              " and 'c_list' = any(actions)",
                 also_views=("connections",), counts="channels_counts")


class UpdateChannel(msgspec.Struct):
    name: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None


def _shape(cid: Any, owner: Any, name: str, description: str, metadata: dict[str, Any],
           created: Any, updated: Any, status: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(cid), "owner_id": str(owner), "name": name}
    if description:
        out["description"] = description
    if metadata:
        out["metadata"] = metadata
    created_at = wire.timestamp(created)  # a new channel's two times are one
    updated_at = created_at if updated is created else wire.timestamp(updated)
    out.update(created_at=created_at, updated_at=updated_at, status=status)
    return out


def channel_json(ch: Channel) -> dict[str, Any]:
    return _shape(ch.id, ch.owner, ch.name, ch.description, ch.metadata, ch.created_at,
                  ch.updated_at, ch.status)


KIND = entities.Kind("channel", "channels", channel_json)


@routes.post("/channels")
async def create_channel(request: web.Request) -> web.Response:
    who = principal(request)
    item = await wire.body(request, dict[str, Any])
    return await entities.create_one(request, who, KIND, commands.CreateChannels([item], bulk=False))


@routes.post("/channels/bulk")
async def create_channels(request: web.Request) -> web.Response:
    who = principal(request)
    items = await wire.body(request, list[Any])
    return await entities.create_many(request, who, KIND, commands.CreateChannels(items))


@routes.get("/channels")
async def list_channels(request: web.Request) -> web.Response:
    return await list_page(request, CHANNELS)


@routes.get(f"/channels/{ID}")
async def get_channel(request: web.Request) -> web.Response:
    return await get_one(request, CHANNELS)


async def _update(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, UpdateChannel)
    return await entities.change(request, who, KIND, commands.UpdateChannel, name=body.name,
                                 description=body.description, metadata=body.metadata)


@routes.put(f"/channels/{ID}")
async def put_channel(request: web.Request) -> web.Response:
    return await _update(request)


@routes.patch(f"/channels/{ID}")
async def patch_channel(request: web.Request) -> web.Response:
    return await _update(request)


@routes.post(f"/channels/{ID}/enable")
async def enable_channel(request: web.Request) -> web.Response:
    return await entities.change(request, principal(request), KIND, commands.SetChannelEnabled, True)


@routes.post(f"/channels/{ID}/disable")
async def disable_channel(request: web.Request) -> web.Response:
    return await entities.change(request, principal(request), KIND, commands.SetChannelEnabled, False)


@routes.post(f"/channels/{ID}/share")
async def share_channel(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, Share)
    users = body.users()
    return await entities.change(request, who, KIND, commands.ShareChannel, users, body.actions,
                                 grantees=users)
