"""Things: create (one or in bulk), read, list, update, secrets, tags, enable, share; /identify."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import msgspec
from aiohttp import web

from command_api import docsql, entities, sqlauth, wire
from command_api.context import container, credential, principal
from command_api.listing import ID, Table, get_one, list_page
from command_api.ratelimit import THING, Failures, address_of, failures
from domain import commands
from domain.errors import Unauthenticated
from domain.things import Thing
from projections.lookups import ThingKey
from projections.redisview import ViewNotReady
from service.container import Container

routes = web.RouteTableDef()

THINGS = Table(view="things", table="things_view", shares="thing_shares", share_column="thing_id",
               # The shape of _shape below, rendered by PostgreSQL.
               doc=docsql.obj(("id", "uuid", "id"), ("name", "text", "name"), ("owner", "uuid", "owner"),
                              ("credentials", "raw", docsql.obj(("secret", "text", "secret"))),
                              ("tags", "json?", "tags"), ("metadata", "json?", "metadata"),
                              ("created_at", "time", "created_at"), ("updated_at", "time", "updated_at"),
                              ("status", "text", "status")),
               what="thing", plural="things", counts="things_counts")


class UpdateThing(msgspec.Struct):
    name: str | None = None
    metadata: dict[str, Any] | None = None


class UpdateTags(msgspec.Struct):
    tags: list[str]


class UpdateSecret(msgspec.Struct):
    secret: str


class Share(msgspec.Struct):
    """Ours ``{user_ids, actions}``, or upstream's ``{group_id, user_id, actions}``."""

    actions: list[str]
    user_ids: list[str] | None = None
    user_id: str | None = None
    group_id: str | None = None

    def users(self) -> list[str] | None:
        if self.user_ids is not None:
            return self.user_ids
        return [self.user_id] if self.user_id is not None else None


def _shape(tid: Any, owner: Any, name: str, secret: str, tags: list[str], metadata: dict[str, Any],
           created: Any, updated: Any, status: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(tid), "name": name, "owner": str(owner),
                           "credentials": {"secret": secret}}
    if tags:
        out["tags"] = tags
    if metadata:
        out["metadata"] = metadata
    created_at = wire.timestamp(created)  # a new thing's two times are one (most of a bulk answer)
    updated_at = created_at if updated is created else wire.timestamp(updated)
    out.update(created_at=created_at, updated_at=updated_at, status=status)
    return out


def thing_json(t: Thing) -> dict[str, Any]:
    return _shape(t.id, t.owner, t.name, t.secret, t.tags, t.metadata, t.created_at, t.updated_at,
                  t.status)


KIND = entities.Kind("thing", "things", thing_json)


@routes.post("/things")
async def create_thing(request: web.Request) -> web.Response:
    who = principal(request)
    item = await wire.body(request, dict[str, Any])
    return await entities.create_one(request, who, KIND, commands.CreateThings([item], bulk=False))


@routes.post("/things/bulk")
async def create_things(request: web.Request) -> web.Response:
    who = principal(request)
    items = await wire.body(request, list[Any])
    return await entities.create_many(request, who, KIND, commands.CreateThings(items))


@routes.get("/things")
async def list_things(request: web.Request) -> web.Response:
    return await list_page(request, THINGS)


@routes.get(f"/things/{ID}")
async def get_thing(request: web.Request) -> web.Response:
    return await get_one(request, THINGS)


@routes.patch(f"/things/{ID}")
async def update_thing(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, UpdateThing)
    return await entities.change(request, who, KIND, commands.UpdateThing, name=body.name,
                                 metadata=body.metadata)


@routes.patch(f"/things/{ID}/tags")
async def update_tags(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, UpdateTags)
    return await entities.change(request, who, KIND, commands.UpdateThingTags, body.tags)


@routes.patch(f"/things/{ID}/secret")
@routes.patch(f"/things/{ID}/key")  # the guide's SDK (UpdateThingSecret) sends it here
async def update_secret(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, UpdateSecret)
    return await entities.change(request, who, KIND, commands.ChangeThingSecret, body.secret)


@routes.post(f"/things/{ID}/enable")
async def enable_thing(request: web.Request) -> web.Response:
    return await entities.change(request, principal(request), KIND, commands.SetThingEnabled, True)


@routes.post(f"/things/{ID}/disable")
async def disable_thing(request: web.Request) -> web.Response:
    return await entities.change(request, principal(request), KIND, commands.SetThingEnabled, False)


@routes.post(f"/things/{ID}/share")
async def share_thing(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, Share)
    users = body.users()
    # The grantees' next reads wait for the grant too.
    return await entities.change(request, who, KIND, commands.ShareThing, users, body.actions,
                                 grantees=users)


def thing_secret(request: web.Request) -> str:
    secret = credential(request, "thing")
    if secret is None:
        raise Unauthenticated("missing or invalid thing secret")
    return secret


async def identify_secret(request: web.Request) -> str:
    """``Authorization: Thing <secret>``; without that header, the body ``{"token": <secret>}``
    that the guide's SDK (``IdentifyThing``) sends. A body that is not JSON under the text rule
    is 400 naming what is wrong; no secret is 401."""
    if request.headers.get("Authorization"):
        return thing_secret(request)
    body = wire.decode_json(await request.read(), Any, "token") if request.can_read_body else None
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise Unauthenticated("missing or invalid thing secret")
    return token.strip()


@routes.post("/identify")
async def identify(request: web.Request) -> web.Response:
    """200 {id} for the enabled thing holding this secret, 401 otherwise.

    Read-your-writes without a user: every command that changes a thing records its
    position under the thing's id. When the view names a thing, waiting for that thing's
    recorded position makes its status and its current secret fresh; if the thing still
    holds the secret afterwards the answer is exact. Otherwise (unknown secret, or one that
    moved) we wait for the view to reach the store's head as of this request, which covers
    every write made before it. Both waits are bounded by the read-your-writes bound.
    """
    secret = await identify_secret(request)
    c = container(request)
    view = c.thing_keys()
    limits, address = failures(request), address_of(request)
    try:
        # The failure limit is read beside the lookup: no wait more for a right secret.
        found, _ = await asyncio.gather(view.lookup(secret), limits.check(THING, None, address))
        return await _identify(c, view.lookup, (view.name,), secret, found, limits, address)
    except ViewNotReady:  # Redis lost the view and the projector rebuilds it: SQL answers
        await limits.check(THING, None, address)
        lookup = partial(sqlauth.thing_key, c)
        return await _identify(c, lookup, sqlauth.THING_VIEWS, secret, await lookup(secret), limits, address)


async def _identify(c: Container, lookup: Callable[[str], Awaitable[ThingKey | None]],
                    views: tuple[str, ...], secret: str, found: ThingKey | None, limits: Failures,
                    address: str) -> web.Response:
    if found is not None:
        await c.freshness.wait(views, await c.freshness.target(found.thing_id))
        again = await lookup(secret)
        if again is not None and again.thing_id == found.thing_id:
            return _identified(again.thing_id, again.enabled)
    await c.freshness.wait(views, await c.store.max_position())
    last = await lookup(secret)
    if last is None:
        await limits.failed(THING, None, address)
    return _identified(last.thing_id if last else None, bool(last and last.enabled))


def _identified(thing_id: str | None, enabled: bool) -> web.Response:
    if thing_id is None or not enabled:
        raise Unauthenticated("invalid thing secret")
    return wire.json({"id": thing_id})
