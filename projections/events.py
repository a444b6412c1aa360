"""EventsView: the audit log in SQL, one row per event, for paging and filtering by position,
entity, event type, actor, time and correlation id. Secrets never reach it."""

from __future__ import annotations

from typing import Any

import msgspec
from psycopg import AsyncCursor
from psycopg_pool import AsyncConnectionPool

from projections.envelope import REDACTED, Envelope
from projections.sealing import SEALED, is_sealed, seals_empty
from projections.sqlview import ANY, Batched, Handlers, SqlView, insert_records

NAME = "events"
TABLES = ("events_view",)
# Fields that hold a credential: kept in the store (aggregates need them), shown as "***".
SECRET_FIELDS = SEALED | REDACTED
_CONTAINERS = (dict, list)
_with_data = msgspec.structs.replace


def redact(value: Any, top: bool = False) -> Any:
    """``value`` with every credential at any depth shown as "***" (None and "" as they are);
    ``top``: ``value`` is an event's data, whose credentials may come sealed (no view opened
    them: a unique claim's key), each then hidden as its opened text would be. Only
    containers are walked into, and one that holds no credential is returned as it is, not
    copied (a call per scalar, then a copy of each container, were a replay's CPU)."""
    if isinstance(value, dict):
        out = None
        for k, v in value.items():
            if k in SECRET_FIELDS:
                if top and is_sealed(v):
                    new = "" if seals_empty(v) else "***"
                else:
                    new = "***" if v not in (None, "") else v
            elif isinstance(v, _CONTAINERS):
                new = redact(v)
            else:
                continue
            if new is not v:
                if out is None:
                    out = dict(value)
                out[k] = new
        return value if out is None else out
    if isinstance(value, list):
        copy = None
        for i, v in enumerate(value):
            if isinstance(v, _CONTAINERS) and (new := redact(v)) is not v:
                if copy is None:
                    copy = list(value)
                copy[i] = new
        return value if copy is None else copy
    return value


COLUMNS = (("position", "bigint"), ("aggregate", "text"), ("aggregate_id", "uuid"), ("version", "int"),
           ("type", "text"), ("occurred_at", "timestamptz"), ("actor", "text"),
           ("correlation_id", "text"), ("causation_id", "text"), ("data", "jsonb"))


async def _any(cur: AsyncCursor, events: list[Envelope]) -> None:
    # A row is the envelope itself, its data redacted: its fields are the columns.
    await insert_records(cur, "events_view", COLUMNS, [
        _with_data(e, data=redact(e.data, top=True)) for e in events], "on conflict (position) do nothing")


HANDLERS: Handlers = {ANY: Batched(_any)}  # every event


def events_view(pool: AsyncConnectionPool) -> SqlView:
    # It opens no sealed credential: it hides each alike, opened or not (``redact_data``).
    return SqlView(NAME, pool, HANDLERS, sealed=False)
