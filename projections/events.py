"""EventsView: the audit log in SQL, one row per event, for paging and filtering by position,
entity, event type, actor, time and correlation id. Secrets never reach it."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncCursor
from psycopg_pool import AsyncConnectionPool

from projections.envelope import REDACTED, Envelope
from projections.sealing import SEALED
from projections.sqlview import ANY, Batched, Handlers, SqlView, insert_records

NAME = "events"
TABLES = ("events_view",)
# Fields that hold a credential: kept in the store (aggregates need them), shown as "***".
SECRET_FIELDS = SEALED | REDACTED


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        # Only containers are walked into (a call per scalar was ~7 % of a replay's CPU).
        return {k: ("***" if k in SECRET_FIELDS and v not in (None, "")
                    else redact(v) if isinstance(v, (dict, list)) else v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) if isinstance(v, (dict, list)) else v for v in value]
    return value


COLUMNS = (("position", "bigint"), ("aggregate", "text"), ("aggregate_id", "uuid"), ("version", "int"),
           ("type", "text"), ("occurred_at", "timestamptz"), ("actor", "text"),
           ("correlation_id", "text"), ("causation_id", "text"), ("data", "jsonb"))


async def _any(cur: AsyncCursor, events: list[Envelope]) -> None:
    await insert_records(cur, "events_view", COLUMNS, [
        {"position": e.position, "aggregate": e.aggregate, "aggregate_id": e.aggregate_id,
         "version": e.version, "type": e.type, "occurred_at": e.occurred_at, "actor": e.actor,
         "correlation_id": e.correlation_id, "causation_id": e.causation_id, "data": redact(e.data)}
        for e in events], "on conflict (position) do nothing")


HANDLERS: Handlers = {ANY: Batched(_any)}  # every event


def events_view(pool: AsyncConnectionPool) -> SqlView:
    return SqlView(NAME, pool, HANDLERS)
