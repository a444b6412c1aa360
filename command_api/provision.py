"""POST /mapping: one request provisions a gateway's whole layout, as a saga."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from aiohttp import web

from command_api import wire
from command_api.bootstrap import gateway_key
from command_api.context import (
    POSITION_HEADER,
    PRINCIPAL,
    container,
    meta,
    principal,
    token_principal,
)
from command_api.errors import status_of_kind
from domain.bootstrap import check_external
from domain.commands import ProvisionGateway
from domain.common import Principal, check_text
from domain.errors import Unauthenticated
from domain.provisioning import COMPLETED, FAILED, Layout, Provisioning, provisioning_id
from domain.users import principal_of
from service.container import Container

routes = web.RouteTableDef()
TIMEOUT_STATUS = 504


class MappingRequest(msgspec.Struct):
    """The body as the wire carries it; the domain holds each field to its rules (a 400
    naming the field), as for a direct call."""

    external_id: Any = None
    external_key: Any = None
    name: Any = None

    def command(self, layout: Layout) -> ProvisionGateway:
        return ProvisionGateway(self.external_id, self.external_key, self.name, layout)


def layout(c: Container) -> Layout:
    """The layout a provisioning gets now (the default's MQTT address is the listener's)."""
    return c.provision.effective(c.settings.mqtt_url)


async def _caller(request: web.Request) -> Principal:
    """The request's bearer token, else the configured API key, else the configured user."""
    c = container(request)
    if request.headers.get("Authorization"):
        return principal(request)
    conf = c.provision
    if conf.api_key:
        who, _ = token_principal(c, conf.api_key)
    elif conf.user and conf.password:
        user = await c.store.run(c.store.app.authenticate_user, conf.user, conf.password)
        who = principal_of(user.id, user.role)
    else:
        raise Unauthenticated("missing bearer token, and no provision credentials are configured")
    request[PRINCIPAL] = who
    return who


@routes.get("/mapping")
async def mapping(request: web.Request) -> web.Response:
    await _caller(request)
    return wire.json(layout(container(request)).content)


async def _dry_run(request: web.Request, who: Principal, body: MappingRequest) -> web.Response:
    c = container(request)
    app = c.store.app
    lay = layout(c)
    conflicts = []
    # The real run's rules: what it refuses (400), a dry run refuses too.
    check_external(body.external_id, "external_id")
    check_external(body.external_key, "external_key")
    check_text(body.name, "name")
    existing = await c.store.run(app.get_or_none, Provisioning, provisioning_id(who.user_id, str(body.external_id)))
    if existing is not None and existing.status == COMPLETED:
        return wire.json({"dry_run": True, "exists": True, **await c.store.run(app.provisioned, existing)})
    holder = await c.store.run(app.holder_of, "external_id", str(body.external_id))
    if holder is not None:
        conflicts.append("external_id already exists")
    things = [{"name": body.name or t["name"],
               "metadata": {**t["metadata"], **({"external_id": body.external_id}
                                               if "external_id" in t["metadata"] else {})}}
              for t in lay.things]
    return wire.json({"dry_run": True, "things": things, "channels": lay.channels,
                      "bootstrap": lay.bootstrap, "x509": lay.x509, "whitelist": lay.whitelist,
                      "conflicts": conflicts}, status=409 if any("exists" in x for x in conflicts) else 200)


@routes.post("/mapping")
async def provision(request: web.Request) -> web.Response:
    who = await _caller(request)
    body = await wire.body(request, MappingRequest)
    if request.query.get("dry_run", "").lower() in ("1", "true", "yes"):
        return await _dry_run(request, who, body)
    c = container(request)
    m = meta(request, who)
    command = body.command(layout(c))
    # A new provisioning whole, in one transaction; anything else goes step by step.
    whole = await c.saga.run_at_once(who, command, m)
    if whole is not None:
        p, answer, position = whole
        return await _answer(c, who, p, position, answer)
    done = await c.store.command(c.store.app.execute, who, command, meta=m)
    p = done.result
    last = [done.position or 0]

    async def remember(position: int | None) -> None:
        if position:
            last[0] = max(last[0], position)

    if p.status != COMPLETED:
        # The saga goes on if this request goes away; the answer waits for it within a bound.
        task = asyncio.ensure_future(c.saga.run(p.id, m, on_commit=remember))
        try:
            p = await asyncio.wait_for(asyncio.shield(task), c.settings.saga_wait)
        except TimeoutError:
            return wire.json({"error": "provisioning is still running; repeat the request for its result"},
                             status=TIMEOUT_STATUS)
    return await _answer(c, who, p, last[0])


async def _answer(c: Container, who: Principal, p: Provisioning, position: int,
                  answer: dict[str, Any] | None = None) -> web.Response:
    # One record of the saga's last position, for the caller and for the gateway's fetch.
    await c.freshness.record([str(who.user_id), gateway_key(p.external_id)], position)
    headers = {POSITION_HEADER: str(position)} if position else {}
    if p.status == FAILED:
        failure = p.failure or {}
        return wire.json({"error": failure.get("reason", "provisioning failed")},
                         status=status_of_kind(failure.get("kind", "")), headers=headers)
    if answer is None:
        answer = await c.store.run(c.store.app.provisioned, p)
    return wire.json(answer, status=201, headers=headers)
