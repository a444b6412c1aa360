"""ChannelsView: channels and their shares in SQL, for lists, filters and reads."""

from __future__ import annotations

from psycopg import AsyncCursor
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from domain.channels import Channel
from projections.envelope import Envelope
from projections.sqlview import Batched, Handlers, SqlView
from projections.things import (
    count_created,
    created_status,
    removed_handler,
    shared_handler,
    status_handler,
)

NAME = "channels"
TABLES = ("channels_view", "channel_shares", "channels_counts")


async def _created(cur: AsyncCursor, events: list[Envelope]) -> None:
    await count_created(cur, "channels_counts", events)
    await cur.executemany(
        "insert into channels_view (id, owner, name, description, metadata, status, created_at, updated_at,"
        " created_pos) values (%s,%s,%s,%s,%s,%s,%s,%s,%s) on conflict (id) do nothing",
        [(e.aggregate_id, str(e.data["owner"]), e.data["name"], e.data.get("description") or "",
          Jsonb(e.data.get("metadata") or {}), created_status(e),
          e.occurred_at, e.occurred_at, e.position) for e in events])


async def _updated(cur: AsyncCursor, e: Envelope) -> None:
    d = e.data
    await cur.execute(
        "update channels_view set name=%s, description=%s, metadata=%s, updated_at=%s where id=%s",
        (d["name"], d.get("description") or "", Jsonb(d["metadata"]), e.occurred_at, e.aggregate_id))


HANDLERS: Handlers = {
    Channel.Created: Batched(_created),
    Channel.Updated: _updated,
    Channel.Enabled: status_handler("channels_view", "enabled", "channels_counts"),
    Channel.Disabled: status_handler("channels_view", "disabled", "channels_counts"),
    Channel.Shared: shared_handler("channels_view", "channel_shares", "channel_id"),
    Channel.Removed: removed_handler("channels_view", "channels_counts", "channel_shares", "channel_id"),
}


def channels_view(pool: AsyncConnectionPool) -> SqlView:
    return SqlView(NAME, pool, HANDLERS)
