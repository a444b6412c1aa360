"""Users and tokens."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from aiohttp import web

from command_api import docsql, wire
from command_api.context import bearer, container, fresh, principal, run
from command_api.filters import Filters
from command_api.listing import total_and_page
from command_api.ratelimit import LOGIN, address_of, failures
from command_api.revocation import ACTIVE
from command_api.shapes import TEXT_PATTERN
from domain import commands
from domain.app import Smq
from domain.errors import NotFound, Unauthenticated
from domain.users import User

routes = web.RouteTableDef()


class Credentials(msgspec.Struct):
    identity: str | None = None
    secret: str | None = None


class CreateUser(msgspec.Struct):
    credentials: Credentials
    name: str = ""
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None
    status: str = "enabled"


# Documented under the text rule (which the body's decoding applies), not validated twice.
_Text = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": TEXT_PATTERN})]


class IssueToken(msgspec.Struct):
    identity: _Text | None = None
    secret: _Text | None = None
    username: _Text | None = None  # later upstream clients send this name
    password: _Text | None = None


class UpdateUser(msgspec.Struct):
    name: str | None = None
    metadata: dict[str, Any] | None = None


class UpdateTags(msgspec.Struct):
    tags: list[str]


class UpdateSecret(msgspec.Struct):
    old_secret: str
    new_secret: str


def user_json(u: User) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(u.id), "name": u.name, "credentials": {"identity": u.identity}}
    if u.metadata:
        out["metadata"] = u.metadata
    if u.tags:
        out["tags"] = u.tags
    out.update(role=u.role, created_at=wire.timestamp(u.created_at),
               updated_at=wire.timestamp(u.updated_at), status=u.status)
    return out


# The shape of user_json above, rendered by PostgreSQL (command_api.docsql).
DOC = docsql.obj(("id", "uuid", "id"), ("name", "text", "name"),
                 ("credentials", "raw", docsql.obj(("identity", "text", "identity"))),
                 ("metadata", "json?", "metadata"), ("tags", "json?", "tags"), ("role", "text", "role"),
                 ("created_at", "time", "created_at"), ("updated_at", "time", "updated_at"),
                 ("status", "text", "status"))


def user_id(request: web.Request) -> UUID:
    try:
        return UUID(request.match_info["id"])
    except ValueError as exc:
        raise NotFound("user not found") from exc


@routes.post("/users")
async def create_user(request: web.Request) -> web.Response:
    body = await wire.body(request, CreateUser)
    command = commands.CreateUser(body.credentials.identity, body.credentials.secret, name=body.name,
                                  metadata=body.metadata, tags=body.tags, status=body.status)
    ran = await run(request, None, Smq.execute, command, touches=lambda u: [u.id])
    user: User = ran.result
    ran.headers["Location"] = f"/users/{user.id}"
    return wire.json(user_json(user), status=201, headers=ran.headers)


@routes.post("/users/tokens/issue")
async def issue_token(request: web.Request) -> web.Response:
    body = await wire.body(request, IssueToken)
    c = container(request)
    identity, secret = body.identity or body.username, body.secret or body.password
    limits, address = failures(request), address_of(request)
    named = identity.strip().lower()[:320] if isinstance(identity, str) and identity.strip() else None
    # One turn per check: a burst of guesses is checked in turns, each one after the failures
    # of those before it are counted.
    async with limits.login_turns:
        await limits.check(LOGIN, named, address)
        try:
            user = await c.store.run(c.store.app.authenticate_user, identity, secret)
        except Unauthenticated:
            await limits.failed(LOGIN, named, address)
            raise
    return wire.json(c.tokens.issue(user.id, user.identity, user.role, user.tokens_epoch), status=201)


@routes.post("/users/tokens/refresh")
async def refresh_token(request: web.Request) -> web.Response:
    c = container(request)
    claims = c.tokens.check(bearer(request), "refresh")
    user = await c.store.run(c.store.app.active_user, claims.user_id, claims.epoch)
    return wire.json(c.tokens.issue(user.id, user.identity, user.role, user.tokens_epoch), status=201)


async def _one(request: web.Request, uid: UUID) -> web.Response:
    c = container(request)
    await fresh(request, "users")
    async with c.pool.connection() as conn:
        row = await (await conn.execute(f"select {DOC} from users_view where id=%s", (uid,))).fetchone()
    if row is None:
        raise NotFound("user not found")
    return wire.raw_json(row[0].encode())


@routes.get("/users/profile")
async def profile(request: web.Request) -> web.Response:
    return await _one(request, principal(request).user_id)


@routes.get("/users")
async def list_users(request: web.Request) -> web.Response:
    who = principal(request)
    offset, limit = wire.paging(request)
    filters, filter_args = Filters.of(request, identity=True).sql()
    where, args = ["true"], []
    if not who.admin:
        where.append("id = %s")
        args.append(who.user_id)
    cond = " and ".join([*where, *filters])
    args = [*args, *filter_args]
    c = container(request)
    await fresh(request, "users")
    async with c.pool.connection() as conn:
        total, docs = await total_and_page(
            conn, f"select count(*) from users_view where {cond}", args,  # noqa: S608
            f"select id as page_id, created_pos as pos from users_view where {cond}"  # noqa: S608
            " order by created_pos limit %s offset %s", [*args, limit, offset], "users_view", DOC)
    return wire.raw_json(docsql.page(limit, offset, total, "users", docs))


@routes.get("/users/{id}")
async def get_user(request: web.Request) -> web.Response:
    who = principal(request)
    uid = user_id(request)
    if uid != who.user_id and not who.admin:
        raise NotFound("user not found")
    return await _one(request, uid)


@routes.patch("/users/secret")
async def update_secret(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, UpdateSecret)
    ran = await run(request, who, Smq.execute, commands.ChangeUserSecret(body.old_secret, body.new_secret))
    request.app[ACTIVE].forget(who.user_id)  # the tokens issued before end here at once
    return wire.json(user_json(ran.result), headers=ran.headers)


@routes.patch("/users/{id}")
async def update_user(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, UpdateUser)
    ran = await run(request, who, Smq.execute,
                    commands.UpdateUser(user_id(request), name=body.name, metadata=body.metadata))
    return wire.json(user_json(ran.result), headers=ran.headers)


@routes.patch("/users/{id}/tags")
async def update_tags(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, UpdateTags)
    ran = await run(request, who, Smq.execute, commands.UpdateUserTags(user_id(request), body.tags))
    return wire.json(user_json(ran.result), headers=ran.headers)


async def _set_enabled(request: web.Request, enabled: bool) -> web.Response:
    who = principal(request)
    ran = await run(request, who, Smq.execute, commands.SetUserEnabled(user_id(request), enabled))
    request.app[ACTIVE].forget(ran.result.id)  # its tokens are checked again, at once
    return wire.json(user_json(ran.result), headers=ran.headers)


@routes.post("/users/{id}/enable")
async def enable_user(request: web.Request) -> web.Response:
    return await _set_enabled(request, True)


@routes.post("/users/{id}/disable")
async def disable_user(request: web.Request) -> web.Response:
    return await _set_enabled(request, False)
