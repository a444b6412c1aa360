"""Client certificates of things: issue, view, list, revoke; the CA and its revocation list."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

import msgspec
from aiohttp import web

from command_api import wire
from command_api.context import container, fresh, principal, run
from command_api.listing import ID, entity_id, visible
from command_api.things import THINGS
from domain import commands
from domain.app import Smq
from domain.errors import Invalid, NotFound
from infra.settings import parse_duration

routes = web.RouteTableDef()
PEM = "application/x-pem-file"
DEFAULT_TTL = "8760h"


class CertRequest(msgspec.Struct):
    thing_id: Any = None
    ttl: Any = None


def _ca(request: web.Request) -> Any:
    ca = container(request).ca
    assert ca is not None, "the container always has a CA"
    return ca


@routes.get("/certs/ca")
async def ca_cert(request: web.Request) -> web.Response:
    return web.Response(text=_ca(request).cert_pem(), content_type=PEM)


@routes.get("/certs/crl")
async def crl(request: web.Request) -> web.Response:
    """Public, as a CRL is; a caller that sends its token also sees its own revocations at once."""
    if request.headers.get("Authorization"):
        principal(request)
    c = container(request)
    await fresh(request, "certs")
    async with c.pool.connection() as conn:
        rows = await (await conn.execute(
            "select serial, revoked_at from certs_view where revoked_at is not null order by serial")).fetchall()
    return web.Response(text=_ca(request).crl_pem(rows), content_type=PEM)


@routes.post("/certs")
async def issue(request: web.Request) -> web.Response:
    who = principal(request)
    body = await wire.body(request, CertRequest)
    ttl = body.ttl if body.ttl not in (None, "") else DEFAULT_TTL
    if not isinstance(ttl, str):
        raise Invalid("ttl must be a duration such as 24h or 90m")
    try:
        seconds = parse_duration(ttl)
    except ValueError as exc:
        raise Invalid("ttl must be a duration such as 24h or 90m") from exc
    ca = _ca(request)

    def issuer(common_name: str, ttl_s: float, thing_id: str) -> Any:
        return ca.issue(common_name, dt.timedelta(seconds=ttl_s), thing_id)

    ran = await run(request, who, Smq.execute, commands.IssueCert(body.thing_id, seconds, issuer))
    issued, book = ran.result
    return wire.json({"thing_id": str(book.thing_id), "client_cert": issued.cert_pem,
                      "client_key": issued.key_pem, "cert_serial": issued.serial,
                      "expiration": wire.timestamp(issued.expires_at), "issuing_ca": ca.cert_pem()},
                     status=201, headers=ran.headers)


def _cert_json(r: tuple[Any, ...]) -> dict[str, Any]:
    serial, thing_id, cert, expires, revoked = r
    out = {"thing_id": str(thing_id), "cert_serial": serial, "client_cert": cert,
           "expiration": wire.timestamp(expires), "revoked": revoked is not None}
    if revoked is not None:
        out["revocation_time"] = wire.timestamp(revoked)
    return out


# A serial in hex; written with dashes (UUID-shaped) too, which DELETE /certs/{thing_id}
# would otherwise take for its own (a 405).
@routes.get("/certs/{serial:[0-9a-fA-F][0-9a-fA-F-]{0,79}}")
async def view(request: web.Request) -> web.Response:
    who = principal(request)
    serial = request.match_info["serial"].replace("-", "").lower().lstrip("0") or "0"
    c = container(request)
    await fresh(request, "certs")
    async with c.pool.connection() as conn:
        row = await (await conn.execute(
            "select owner, serial, thing_id, cert, expires_at, revoked_at from certs_view where serial = %s",
            (serial,))).fetchone()
    if row is None or (row[0] != who.user_id and not who.admin):
        raise NotFound("certificate not found")
    return wire.json(_cert_json(row[1:]))


@routes.get(f"/serials/{ID}")
async def serials(request: web.Request) -> web.Response:
    who = principal(request)
    offset, limit = wire.paging(request)
    c = container(request)
    tid = entity_id(request, "thing")
    cond, args = "thing_id = %s", [tid]
    if not who.admin:
        cond, args = cond + " and owner = %s", [*args, who.user_id]
    await fresh(request, "certs", THINGS.view)
    seen, seen_args = visible(THINGS, who)
    async with c.pool.connection() as conn:
        # Someone else's thing (or none) is 404, as for every resource the caller cannot see.
        if await (await conn.execute(f"select 1 from {THINGS.table} where id = %s and {seen}",  # noqa: S608
                                     [tid, *seen_args])).fetchone() is None:
            raise NotFound("thing not found")
        total = (await (await conn.execute(
            f"select count(*) from certs_view where {cond}", args)).fetchone() or (0,))[0]  # noqa: S608
        rows = await (await conn.execute(
            f"select serial, thing_id, cert, expires_at, revoked_at from certs_view where {cond}"  # noqa: S608
            " order by created_pos limit %s offset %s", [*args, limit, offset])).fetchall()
    certs = [_cert_json(r) for r in rows]
    for cert in certs:
        del cert["client_cert"]
    return wire.json({"limit": limit, "offset": offset, "total": total,
                      "serials": [x["cert_serial"] for x in certs], "certs": certs})


def _canonical(thing_id: str) -> tuple[str, ...]:
    try:
        return (str(UUID(thing_id)),)
    except ValueError:
        return ()


@routes.delete(f"/certs/{ID}")
async def revoke(request: web.Request) -> web.Response:
    who = principal(request)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    # Recorded under the thing's id too: its next MQTT connect sees the revocation (workers.authorizer).
    ran = await run(request, who, Smq.execute, commands.RevokeCerts(request.match_info["id"], now),
                    touches=lambda _: _canonical(request.match_info["id"]))
    return wire.json({"revocation_time": wire.timestamp(now), "revoked": ran.result}, headers=ran.headers)
