"""ThingsView: things and their shares in SQL, for lists, filters and reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from psycopg import AsyncCursor
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from projections.envelope import Envelope
from projections.sqlview import SqlView

TABLES = ("things_view", "thing_shares")


async def _created(cur: AsyncCursor, e: Envelope) -> None:
    d = e.data
    await cur.execute(
        "insert into things_view (id, owner, name, secret, tags, metadata, status, created_at, updated_at,"
        " created_pos) values (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) on conflict (id) do nothing",
        (e.aggregate_id, str(d["owner"]), d["name"], d["secret"], Jsonb(d.get("tags") or []),
         Jsonb(d.get("metadata") or {}), "enabled" if d.get("enabled", True) else "disabled",
         e.occurred_at, e.occurred_at, e.position))


async def _updated(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute("update things_view set name=%s, metadata=%s, updated_at=%s where id=%s",
                      (e.data["name"], Jsonb(e.data["metadata"]), e.occurred_at, e.aggregate_id))


async def _tags(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute("update things_view set tags=%s, updated_at=%s where id=%s",
                      (Jsonb(e.data["tags"]), e.occurred_at, e.aggregate_id))


async def _secret(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute("update things_view set secret=%s, updated_at=%s where id=%s",
                      (e.data["secret"], e.occurred_at, e.aggregate_id))


def status_handler(table: str, value: str) -> Callable[[AsyncCursor, Envelope], Awaitable[None]]:
    async def apply(cur: AsyncCursor, e: Envelope) -> None:
        await cur.execute(f"update {table} set status=%s, updated_at=%s where id=%s",  # noqa: S608
                          (value, e.occurred_at, e.aggregate_id))
    return apply


def shared_handler(main: str, table: str, column: str) -> Callable[[AsyncCursor, Envelope], Awaitable[None]]:
    """Each Shared event carries the whole new list of actions of every user it changes."""
    async def apply(cur: AsyncCursor, e: Envelope) -> None:
        await cur.execute(f"update {main} set updated_at=%s where id=%s",  # noqa: S608
                          (e.occurred_at, e.aggregate_id))
        for user_id, actions in (e.data.get("grants") or {}).items():
            await cur.execute(
                f"insert into {table} ({column}, user_id, actions) values (%s, %s, %s)"  # noqa: S608
                f" on conflict ({column}, user_id) do update set actions = excluded.actions",
                (e.aggregate_id, str(user_id), list(actions)))
    return apply


def things_view(pool: AsyncConnectionPool) -> SqlView:
    return SqlView("things", pool, {
        ("thing", "created"): _created,
        ("thing", "updated"): _updated,
        ("thing", "tags_updated"): _tags,
        ("thing", "secret_changed"): _secret,
        ("thing", "enabled"): status_handler("things_view", "enabled"),
        ("thing", "disabled"): status_handler("things_view", "disabled"),
        ("thing", "shared"): shared_handler("things_view", "thing_shares", "thing_id"),
    })
