"""UsersView: the users list and profile, in SQL."""

from __future__ import annotations

from psycopg import AsyncCursor
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from domain.traits import status_of
from domain.users import User
from projections.envelope import Envelope
from projections.sqlview import Handlers, SqlView

NAME = "users"
TABLES = ("users_view",)


async def _created(cur: AsyncCursor, e: Envelope) -> None:
    d = e.data
    await cur.execute(
        "insert into users_view (id, identity, name, metadata, tags, role, status, created_at, updated_at, created_pos)"
        " values (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) on conflict (id) do nothing",
        (e.aggregate_id, d["identity"], d["name"], Jsonb(d.get("metadata") or {}), Jsonb(d.get("tags") or []),
         d.get("role", "user"), status_of(d.get("enabled", True)),
         e.occurred_at, e.occurred_at, e.position))


async def _updated(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute("update users_view set name=%s, metadata=%s, updated_at=%s where id=%s",
                      (e.data["name"], Jsonb(e.data["metadata"]), e.occurred_at, e.aggregate_id))


async def _tags(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute("update users_view set tags=%s, updated_at=%s where id=%s",
                      (Jsonb(e.data["tags"]), e.occurred_at, e.aggregate_id))


async def _touched(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute("update users_view set updated_at=%s where id=%s", (e.occurred_at, e.aggregate_id))


def _status(value: str):  # noqa: ANN202
    async def apply(cur: AsyncCursor, e: Envelope) -> None:
        await cur.execute("update users_view set status=%s, updated_at=%s where id=%s",
                          (value, e.occurred_at, e.aggregate_id))
    return apply


HANDLERS: Handlers = {
    User.Created: _created,
    User.Updated: _updated,
    User.TagsUpdated: _tags,
    User.SecretChanged: _touched,
    User.Enabled: _status("enabled"),
    User.Disabled: _status("disabled"),
}


def users_view(pool: AsyncConnectionPool) -> SqlView:
    return SqlView(NAME, pool, HANDLERS)
