"""The filters of the lists (things, channels, users, and the things or channels of a
connection): read from the query once, turned into SQL in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from command_api import wire


@dataclass(frozen=True)
class Filters:
    """``status`` (None: all), ``name``, ``metadata`` (contained in the row's) and, for users,
    ``identity``; None where the query does not ask."""

    status: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    identity: str | None = None

    @classmethod
    def of(cls, request: web.Request, identity: bool = False) -> Filters:
        """The list's filters from the query (a bad one is a 400 naming it)."""
        status, name = wire.status_filter(request), wire.name_filter(request)
        who = request.query.get("identity") if identity else None
        return cls(status, name, wire.metadata_filter(request), who)

    @property
    def narrowed(self) -> bool:
        """Whether a filter other than the status narrows the list (counts by status do not
        answer its total)."""
        return self.name is not None or self.metadata is not None or self.identity is not None

    def sql(self) -> tuple[list[str], list[Any]]:
        """The conditions (to be joined by ``and``) and their arguments, in that order."""
        where: list[str] = []
        args: list[Any] = []
        if self.status:
            where.append("status = %s")
            args.append(self.status)
        if self.name is not None:
            where.append("name = %s")
            args.append(self.name)
        if self.identity is not None:
            where.append("identity = %s")
            args.append(self.identity)
        if self.metadata is not None:
            where.append("metadata @> %s::jsonb")
            args.append(msgspec.json.encode(self.metadata).decode())
        return where, args
