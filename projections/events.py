"""EventsView: the audit log in SQL, one row per event, for paging and filtering by position,
entity, event type, actor, time and correlation id. Secrets never reach it."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncCursor
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from projections.envelope import REDACTED, Envelope
from projections.sealing import SEALED
from projections.sqlview import ANY, Batched, Handlers, SqlView

NAME = "events"
TABLES = ("events_view",)
# Fields that hold a credential: kept in the store (aggregates need them), shown as "***".
SECRET_FIELDS = SEALED | REDACTED


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("***" if k in SECRET_FIELDS and v not in (None, "") else redact(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


async def _any(cur: AsyncCursor, events: list[Envelope]) -> None:
    await cur.executemany(
        "insert into events_view (position, aggregate, aggregate_id, version, type, occurred_at, actor,"
        " correlation_id, causation_id, data) values (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
        " on conflict (position) do nothing",
        [(e.position, e.aggregate, e.aggregate_id, e.version, e.type, e.occurred_at, e.actor,
          e.correlation_id, e.causation_id, Jsonb(redact(e.data))) for e in events])


HANDLERS: Handlers = {ANY: Batched(_any)}  # every event


def events_view(pool: AsyncConnectionPool) -> SqlView:
    return SqlView(NAME, pool, HANDLERS)
