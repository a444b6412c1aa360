"""ThingsView: things and their shares in SQL, for lists, filters and reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from psycopg import AsyncCursor
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from domain.things import Thing
from domain.traits import status_of
from projections.envelope import Envelope
from projections.sqlview import Batched, Handlers, SqlView, insert_records

NAME = "things"
TABLES = ("things_view", "thing_shares", "things_counts")


def created_status(e: Envelope) -> str:
    return status_of(e.data.get("enabled", True))


COLUMNS = (("id", "uuid"), ("owner", "uuid"), ("name", "text"), ("secret", "text"), ("tags", "jsonb"),
           ("metadata", "jsonb"), ("status", "text"), ("created_at", "timestamptz"),
           ("updated_at", "timestamptz"), ("created_pos", "bigint"))


async def _created(cur: AsyncCursor, events: list[Envelope]) -> None:
    await count_created(cur, "things_counts", events)
    await insert_records(cur, "things_view", COLUMNS, [
        {"id": e.aggregate_id, "owner": str(e.data["owner"]), "name": e.data["name"],
         "secret": e.data["secret"], "tags": e.data.get("tags") or [],
         "metadata": e.data.get("metadata") or {}, "status": created_status(e),
         "created_at": e.occurred_at, "updated_at": e.occurred_at, "created_pos": e.position}
        for e in events], "on conflict (id) do nothing")


async def _updated(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute("update things_view set name=%s, metadata=%s, updated_at=%s where id=%s",
                      (e.data["name"], Jsonb(e.data["metadata"]), e.occurred_at, e.aggregate_id))


async def _tags(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute("update things_view set tags=%s, updated_at=%s where id=%s",
                      (Jsonb(e.data["tags"]), e.occurred_at, e.aggregate_id))


async def _secret(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute("update things_view set secret=%s, updated_at=%s where id=%s",
                      (e.data["secret"], e.occurred_at, e.aggregate_id))


def status_handler(table: str, value: str, counts: str) -> Callable[[AsyncCursor, Envelope], Awaitable[None]]:
    """A new status, and the owner's counts by status moved with it (in one statement)."""
    async def apply(cur: AsyncCursor, e: Envelope) -> None:
        await cur.execute(
            f"with old as (select owner, status from {table} where id = %(id)s for update),"  # noqa: S608
            f" upd as (update {table} set status = %(new)s, updated_at = %(at)s where id = %(id)s returning 1),"
            f" dec as (update {counts} c set n = c.n - 1 from old where old.status <> %(new)s"
            "          and c.owner = old.owner and c.status = old.status returning 1)"
            f" insert into {counts} (owner, status, n) select owner, %(new)s, 1 from old"
            f" where old.status <> %(new)s on conflict (owner, status) do update set n = {counts}.n + 1",
            {"id": e.aggregate_id, "new": value, "at": e.occurred_at})
    return apply


async def count_created(cur: AsyncCursor, counts: str, events: list[Envelope]) -> None:
    """The owners' counts by status, moved by a run of Created events (one row each)."""
    added: dict[tuple[str, str], int] = {}
    for e in events:
        key = (str(e.data["owner"]), created_status(e))
        added[key] = added.get(key, 0) + 1
    await cur.executemany(f"insert into {counts} (owner, status, n) values (%s, %s, %s)"  # noqa: S608
                          f" on conflict (owner, status) do update set n = {counts}.n + excluded.n",
                          [(owner, status, n) for (owner, status), n in sorted(added.items())])


def removed_handler(table: str, counts: str, shares: str,
                    column: str) -> Callable[[AsyncCursor, Envelope], Awaitable[None]]:
    """The row forgotten, with its shares, and the owner's count of its status moved down (in
    one statement): a removed one is in no list, count or lookup."""
    async def apply(cur: AsyncCursor, e: Envelope) -> None:
        await cur.execute(
            f"with old as (delete from {table} where id = %(id)s returning owner, status),"  # noqa: S608
            f" gone as (delete from {shares} where {column} = %(id)s returning 1)"
            f" update {counts} c set n = c.n - 1 from old where c.owner = old.owner and c.status = old.status",
            {"id": e.aggregate_id})
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


HANDLERS: Handlers = {
    Thing.Created: Batched(_created),
    Thing.Updated: _updated,
    Thing.TagsUpdated: _tags,
    Thing.SecretChanged: _secret,
    Thing.Enabled: status_handler("things_view", "enabled", "things_counts"),
    Thing.Disabled: status_handler("things_view", "disabled", "things_counts"),
    Thing.Shared: shared_handler("things_view", "thing_shares", "thing_id"),
    Thing.Removed: removed_handler("things_view", "things_counts", "thing_shares", "thing_id"),
}


def things_view(pool: AsyncConnectionPool) -> SqlView:
    return SqlView(NAME, pool, HANDLERS)
