"""ProvisioningsView: each provisioning's status and last move, for the saga's recovery."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from psycopg import AsyncCursor
from psycopg_pool import AsyncConnectionPool

from domain.provisioning import Provisioning
from projections.envelope import Envelope
from projections.sqlview import Handlers, SqlView

NAME = "provisionings"
TABLES = ("provisionings_view",)


async def _started(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute(
        "insert into provisionings_view (id, owner, external_id, status, attempt, updated_at)"
        " values (%s,%s,%s,'running',1,%s) on conflict (id) do nothing",
        (e.aggregate_id, str(e.data["owner"]), e.data["external_id"], e.occurred_at))


def _set(status: str | None, attempt: bool = False) -> Callable[[AsyncCursor, Envelope], Awaitable[None]]:
    async def apply(cur: AsyncCursor, e: Envelope) -> None:
        sets = "updated_at=%s" + (", status=%s" if status else "") + (", attempt=attempt+1" if attempt else "")
        args = [e.occurred_at, *([status] if status else []), e.aggregate_id]
        await cur.execute(f"update provisionings_view set {sets} where id=%s", args)  # noqa: S608
    return apply


HANDLERS: Handlers = {
    Provisioning.Started: _started,
    Provisioning.Restarted: _set("running", attempt=True),
    Provisioning.StepDone: _set(None),
    Provisioning.Completed: _set("completed"),
    Provisioning.Failed: _set("compensating"),
    Provisioning.StepCompensated: _set(None),
    Provisioning.Compensated: _set("failed"),
}


def provisionings_view(pool: AsyncConnectionPool) -> SqlView:
    return SqlView(NAME, pool, HANDLERS)
