"""Channels: create (one or in bulk), read, list, update, enable and disable, share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from command_api import docsql, wire
from command_api.context import principal, run
from command_api.listing import ID, Table, entity_id, get_one, list_page
from command_api.things import Share
from domain import commands
from domain.app import Principal, Smq
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
    out.update(created_at=wire.timestamp(created), updated_at=wire.timestamp(updated), status=status)
    return out


def channel_json(ch: Channel) -> dict[str, Any]:
    return _shape(ch.id, ch.owner, ch.name, ch.description, ch.metadata, ch.created_at,
                  ch.updated_at, ch.status)


@routes.post("/channels")
async def create_channel(request: web.Request) -> web.Response:
    who = principal(request)
    item = await wire.body(request, dict[str, Any])
    command = commands.CreateChannels([item], bulk=False)
    ran = await run(request, who, Smq.execute, command, touches=lambda chs: [chs[0].id])
    channel: Channel = ran.result[0]
    ran.headers["Location"] = f"/channels/{channel.id}"
    return wire.json(channel_json(channel), status=201, headers=ran.headers)


@routes.post("/channels/bulk")
async def create_channels(request: web.Request) -> web.Response:
    who = principal(request)
    items = await wire.body(request, list[Any])
    ran = await run(request, who, Smq.execute, commands.CreateChannels(items),
                    touches=lambda chs: [ch.id for ch in chs])
    channels: list[Channel] = ran.result
    return wire.json({"total": len(channels), "channels": [channel_json(ch) for ch in channels]},
                     headers=ran.headers)


@routes.get("/channels")
async def list_channels(request: web.Request) -> web.Response:
    return await list_page(request, CHANNELS)


@routes.get(f"/channels/{ID}")
async def get_channel(request: web.Request) -> web.Response:
    return await get_one(request, CHANNELS)


async def _change(request: web.Request, who: Principal, command: Callable[..., msgspec.Struct], *args: Any,
                  grantees: list[str] | None = None, **kwargs: Any) -> web.Response:
    """Run a command on the channel of the path; the channel (and ``grantees``) read it next."""
    ran = await run(request, who, Smq.execute, command(entity_id(request, "channel"), *args, **kwargs),
                    touches=lambda ch: [ch.id, *(grantees or [])])
    return wire.json(channel_json(ran.result), headers=ran.headers)


async def _update(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, UpdateChannel)
    return await _change(request, who, commands.UpdateChannel, name=body.name, description=body.description,
                         metadata=body.metadata)


@routes.put(f"/channels/{ID}")
async def put_channel(request: web.Request) -> web.Response:
    return await _update(request)


@routes.patch(f"/channels/{ID}")
async def patch_channel(request: web.Request) -> web.Response:
    return await _update(request)


@routes.post(f"/channels/{ID}/enable")
async def enable_channel(request: web.Request) -> web.Response:
    return await _change(request, principal(request), commands.SetChannelEnabled, True)


@routes.post(f"/channels/{ID}/disable")
async def disable_channel(request: web.Request) -> web.Response:
    return await _change(request, principal(request), commands.SetChannelEnabled, False)


@routes.post(f"/channels/{ID}/share")
async def share_channel(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, Share)
    users = body.users()
    return await _change(request, who, commands.ShareChannel, users, body.actions, grantees=users)
