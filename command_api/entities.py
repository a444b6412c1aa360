"""What the routes of things and channels share: create one or many, and run a command on the
one the path names, answering it in its resource's shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from command_api import wire
from command_api.context import run
from command_api.listing import entity_id
from domain.app import Principal, Smq


@dataclass(frozen=True)
class Kind:
    """A resource as its routes name and show it: ``thing`` (the path's id), under ``/things``."""

    what: str
    plural: str
    json: Callable[[Any], dict[str, Any]]


async def create_one(request: web.Request, who: Principal, kind: Kind,
                     command: msgspec.Struct) -> web.Response:
    """201 with the one made and its ``Location``; it reads itself next."""
    ran = await run(request, who, Smq.execute, command, touches=lambda made: [made[0].id])
    made = ran.result[0]
    ran.headers["Location"] = f"/{kind.plural}/{made.id}"
    return wire.json(kind.json(made), status=201, headers=ran.headers)


async def create_many(request: web.Request, who: Principal, kind: Kind,
                      command: msgspec.Struct) -> web.Response:
    """200 ``{total, <plural>}``; each one made reads itself next."""
    ran = await run(request, who, Smq.execute, command, touches=lambda made: [m.id for m in made])
    made: list[Any] = ran.result
    return wire.json({"total": len(made), kind.plural: [kind.json(m) for m in made]}, headers=ran.headers)


async def change(request: web.Request, who: Principal, kind: Kind, command: Callable[..., msgspec.Struct],
                 *args: Any, grantees: list[str] | None = None, **kwargs: Any) -> web.Response:
    """Run a command on the one of the path; it (and whom ``grantees`` names) reads it next."""
    ran = await run(request, who, Smq.execute, command(entity_id(request, kind.what), *args, **kwargs),
                    touches=lambda one: [one.id, *(grantees or [])])
    return wire.json(kind.json(ran.result), headers=ran.headers)
