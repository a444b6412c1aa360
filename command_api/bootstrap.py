"""Bootstrap configurations, and the fetch by which a gateway gets its own."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from uuid import UUID

import msgspec
from aiohttp import web

from command_api import wire
from command_api.context import authorization, container, credential, fresh, principal, run
from command_api.listing import ID
from command_api.ratelimit import BOOTSTRAP, address_of, failures
from domain import commands
from domain.app import Principal, Smq
from domain.bootstrap import Config
from domain.errors import Forbidden, Invalid, NotFound, Unauthenticated
from infra import crypto

routes = web.RouteTableDef()
VIEWS = ("configs", "things", "channels")
COLUMNS = ("c.thing_id, t.secret, c.channels, c.external_id, c.external_key, c.content, c.name, c.state,"
           " c.client_cert, c.client_key, c.ca_cert")


def gateway_key(external_id: str) -> str:
    """Under which name a config's last write is remembered, for its gateway's next fetch."""
    return f"ext:{external_id}"


def _thing_id(request: web.Request) -> UUID:
    try:
        return UUID(request.match_info["id"])
    except ValueError as exc:
        raise NotFound("config not found") from exc


async def _channels(request: web.Request, ids: list[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    async with container(request).pool.connection() as conn:
        rows = await (await conn.execute(
            "select id, name, metadata from channels_view where id = any(%s::uuid[])", (ids,))).fetchall()
    by_id = {str(r[0]): r for r in rows}
    out = []
    for cid in ids:
        r = by_id.get(cid)
        item: dict[str, Any] = {"id": cid}
        if r is not None:
            if r[1]:
                item["name"] = r[1]
            if r[2]:
                item["metadata"] = r[2]
        out.append(item)
    return out


async def _view(request: web.Request, row: tuple[Any, ...], with_channels: bool = True) -> dict[str, Any]:
    tid, secret, channels, ext_id, ext_key, content, name, state, cert, _key, ca = row
    out: dict[str, Any] = {"mainflux_id": str(tid), "mainflux_key": secret}
    if with_channels:
        out["mainflux_channels"] = await _channels(request, list(channels))
    out.update(external_id=ext_id, external_key=ext_key)
    for k, v in (("content", content), ("name", name)):
        if v:
            out[k] = v
    out["state"] = state
    for k, v in (("client_cert", cert), ("ca_cert", ca)):
        if v:
            out[k] = v
    return out


def _config_json(config: Config, secret: str) -> dict[str, Any]:
    out: dict[str, Any] = {"mainflux_id": str(config.thing_id), "mainflux_key": secret,
                           "mainflux_channels": [{"id": c} for c in config.channels],
                           "external_id": config.external_id, "external_key": config.external_key}
    if config.content:
        out["content"] = config.content
    if config.name:
        out["name"] = config.name
    out["state"] = config.state
    return out


def _gateway(config: Config | None) -> list[str]:
    """Where a change of a config is recorded: under its gateway's key, for the gateway's fetch."""
    return [gateway_key(config.external_id)] if config is not None else []


async def _answer(request: web.Request, who: Principal, command: msgspec.Struct,
                  status: int = 200) -> web.Response:
    ran = await run(request, who, Smq.execute, command, touches=_gateway)
    config: Config = ran.result
    c = container(request)
    secret = await c.store.run(c.store.app.thing_secret_of, config.thing_id)
    if status == 201:
        ran.headers["Location"] = f"/things/configs/{config.thing_id}"
    return wire.json(_config_json(config, secret), status=status, headers=ran.headers)


@routes.post("/things/configs")
async def add_config(request: web.Request) -> web.Response:
    who = principal(request)
    # Read whole, so that the text rule holds every member, those the command ignores too.
    body = await wire.body(request, dict[str, Any])
    return await _answer(request, who, msgspec.convert(body, commands.AddConfig), status=201)


@routes.get("/things/configs")
async def list_configs(request: web.Request) -> web.Response:
    who = principal(request)
    offset, limit = wire.paging(request)
    where: list[str] = ["true"]
    args: list[Any] = []
    if not who.admin:
        where.append("c.owner = %s")
        args.append(who.user_id)
    state = request.query.get("state")
    if state is not None:
        if state not in ("0", "1"):
            raise Invalid("state must be 0 or 1")
        where.append("c.state = %s")
        args.append(int(state))
    name = wire.name_filter(request)
    if name is not None:  # upstream: partial and case-insensitive
        where.append("c.name ilike %s")
        args.append("%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    cond = " and ".join(where)
    c = container(request)
    await fresh(request, *VIEWS)
    async with c.pool.connection() as conn:
        total = (await (await conn.execute(
            f"select count(*) from configs_view c where {cond}", args)).fetchone() or (0,))[0]  # noqa: S608
        rows = await (await conn.execute(
            f"select {COLUMNS} from configs_view c join things_view t on t.id = c.thing_id"  # noqa: S608
            f" where {cond} order by c.created_pos limit %s offset %s", [*args, limit, offset])).fetchall()
    configs = [await _view(request, r, with_channels=False) for r in rows]
    return wire.json({"limit": limit, "offset": offset, "total": total, "configs": configs})


@routes.get(f"/things/configs/{ID}")
async def view_config(request: web.Request) -> web.Response:
    who = principal(request)
    tid = _thing_id(request)
    c = container(request)
    await fresh(request, *VIEWS)
    async with c.pool.connection() as conn:
        row = await (await conn.execute(
            f"select c.owner, {COLUMNS} from configs_view c join things_view t on t.id = c.thing_id"  # noqa: S608
            " where c.thing_id = %s", (tid,))).fetchone()
    if row is None or (row[0] != who.user_id and not who.admin):
        raise NotFound("config not found")
    return wire.json(await _view(request, row[1:]))


class ConfigUpdate(msgspec.Struct):
    name: Any = None
    content: Any = None


@routes.put(f"/things/configs/{ID}")
async def update_config(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, ConfigUpdate)
    return await _answer(request, who, commands.UpdateConfig(_thing_id(request), body.name, body.content))


class CertsUpdate(msgspec.Struct):
    """All three, as upstream's SDK always sends them (``""`` blanks one): a body without
    them would blank every certificate."""

    client_cert: Any
    client_key: Any
    ca_cert: Any


@routes.patch(f"/things/configs/certs/{ID}")
async def update_certs(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, CertsUpdate)
    command = commands.UpdateConfigCerts(_thing_id(request), body.client_cert, body.client_key, body.ca_cert)
    ran = await run(request, who, Smq.execute, command, touches=_gateway)
    config: Config = ran.result
    out = {"mainflux_id": str(config.thing_id)}
    out.update({k: v for k, v in (("client_cert", config.client_cert), ("client_key", config.client_key),
                                  ("ca_cert", config.ca_cert)) if v})
    return wire.json(out, headers=ran.headers)


class ChannelsUpdate(msgspec.Struct):
    channels: Any  # required: {} is no update (null or [] leaves no channel)


@routes.put(f"/things/configs/connections/{ID}")
async def update_connections(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, ChannelsUpdate)
    return await _answer(request, who, commands.UpdateConfigChannels(_thing_id(request), body.channels))


class StateUpdate(msgspec.Struct):
    # Absent is 0, as upstream decodes it: the SDK's Whitelist marshals `state,omitempty`, so
    # whitelisting off sends {}. An explicit null or anything else is still 400.
    state: Any = 0


@routes.put(f"/things/state/{ID}")
async def change_state(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, StateUpdate)
    return await _answer(request, who, commands.ChangeConfigState(_thing_id(request), body.state))


@routes.delete(f"/things/configs/{ID}")
async def remove_config(request: web.Request) -> web.Response:
    who = principal(request)
    ran = await run(request, who, Smq.execute, commands.RemoveConfig(_thing_id(request)), touches=_gateway)
    return web.Response(status=204, headers=ran.headers)


# -- the gateway's side ---------------------------------------------------------------------
def _external_key(request: web.Request) -> str:
    """``Authorization: Thing <key>``, or the bare key (``Authorization: <key>``), as some
    versions of the gateway's Agent send it."""
    key = credential(request, "thing")
    if key is None:
        key = authorization(request).strip() or None
    if key is None:
        raise Unauthenticated("missing or invalid external key")
    return key


async def _bootstrap(request: web.Request, external_key: str | None) -> dict[str, Any]:
    """The gateway's configuration; ``external_key`` None: one that could not be read.
    An unknown external id or a wrong key counts as a failure of the caller's address (and of
    the external id), as every secret check does (``command_api.ratelimit``)."""
    external_id = request.match_info["external_id"]
    c = container(request)
    limits, address = failures(request), address_of(request)
    await limits.check(BOOTSTRAP, external_id, address)
    if external_key is None:
        await limits.failed(BOOTSTRAP, external_id, address)
        raise Forbidden("wrong external key")
    await fresh(request, *VIEWS, user_id=gateway_key(external_id))
    async with c.pool.connection() as conn:
        row = await (await conn.execute(
            f"select {COLUMNS} from configs_view c join things_view t on t.id = c.thing_id"  # noqa: S608
            " where c.external_id = %s", (external_id,))).fetchone()
    if row is None:
        await limits.failed(BOOTSTRAP, external_id, address)
        raise NotFound("config not found")
    # Constant time, whatever the lengths: compare digests of the keys.
    given = hashlib.sha256(external_key.encode()).digest()
    if not hmac.compare_digest(given, hashlib.sha256(row[4].encode()).digest()):
        await limits.failed(BOOTSTRAP, external_id, address)
        raise Forbidden("wrong external key")
    tid, secret, channels, _ext_id, _ext_key, content, _name, _state, cert, key, ca = row
    out: dict[str, Any] = {"mainflux_id": str(tid), "mainflux_key": secret,
                           "mainflux_channels": await _channels(request, list(channels))}
    # Always a JSON text: the Agent parses it, and an empty one fails it ("unexpected end of
    # JSON input"), so an empty configuration is the empty object.
    out["content"] = content or "{}"
    for k, v in (("client_cert", cert), ("client_key", key), ("ca_cert", ca)):
        if v:
            out[k] = v
    return out


@routes.get("/things/bootstrap/secure/{external_id}")
async def bootstrap_secure(request: web.Request) -> web.Response:
    """As upstream: the external key comes hex-encoded and AES-CFB encrypted, and so goes the answer."""
    key = container(request).bootstrap_key
    sent = _external_key(request)
    try:
        external_key: str | None = crypto.decrypt(key, bytes.fromhex(sent)).decode()
    except (ValueError, UnicodeDecodeError):
        external_key = None
    body = msgspec.json.encode(await _bootstrap(request, external_key))
    return web.Response(body=crypto.encrypt(key, body), content_type="application/octet-stream")


@routes.get("/things/bootstrap/{external_id}")
async def bootstrap(request: web.Request) -> web.Response:
    return wire.json(await _bootstrap(request, _external_key(request)))
