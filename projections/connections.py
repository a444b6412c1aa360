"""ConnectionsView: which things are connected to which channels, and the users' policies on
channels, in SQL, for the lists of connections and for what a policy lets a user see.

A row is kept once made: disconnecting (or revoking) clears it and ``active``, so its
``created_at`` stays the aggregate's creation time, as the command's answer shows it.
A row that becomes active again takes the position of that event: lists follow the order
in which connections were made.
"""

from __future__ import annotations

from psycopg import AsyncCursor
from psycopg_pool import AsyncConnectionPool

from domain.connections import Connection
from domain.policies import Policy
from projections.envelope import Envelope
from projections.sqlview import Batched, Handlers, SqlView

NAME = "connections"
TABLES = ("connections", "channel_policies")


async def _conn_created(cur: AsyncCursor, events: list[Envelope]) -> None:
    await cur.executemany(
        "insert into connections (id, channel_id, thing_id, actions, active, created_at, updated_at,"
        " created_pos) values (%s,%s,%s,'{}',false,%s,%s,%s) on conflict (id) do nothing",
        [(e.aggregate_id, str(e.data["channel_id"]), str(e.data["thing_id"]), e.occurred_at,
          e.occurred_at, e.position) for e in events])


async def _connected(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute(
        "update connections set owner=%s, actions=%s, updated_at=%s,"
        " created_pos = case when active then created_pos else %s end, active=true where id=%s",
        (str(e.data["owner"]), list(e.data["actions"]), e.occurred_at, e.position, e.aggregate_id))


async def _disconnected(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute("update connections set actions='{}', active=false, updated_at=%s where id=%s",
                      (e.occurred_at, e.aggregate_id))


async def _policy_created(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute(
        "insert into channel_policies (id, subject, object, actions, active, created_at, updated_at,"
        " created_pos) values (%s,%s,%s,'{}',false,%s,%s,%s) on conflict (id) do nothing",
        (e.aggregate_id, str(e.data["subject"]), str(e.data["object_id"]), e.occurred_at,
         e.occurred_at, e.position))


async def _assigned(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute(
        "update channel_policies set owner=%s, actions=%s, updated_at=%s,"
        " created_pos = case when active then created_pos else %s end, active=true where id=%s",
        (str(e.data["owner"]), list(e.data["actions"]), e.occurred_at, e.position, e.aggregate_id))


async def _revoked(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute("update channel_policies set actions='{}', active=false, updated_at=%s where id=%s",
                      (e.occurred_at, e.aggregate_id))


HANDLERS: Handlers = {
    Connection.Created: Batched(_conn_created),
    Connection.Connected: _connected,
    Connection.Disconnected: _disconnected,
    Policy.Created: _policy_created,
    Policy.Assigned: _assigned,
    Policy.Revoked: _revoked,
}


def connections_view(pool: AsyncConnectionPool) -> SqlView:
    return SqlView(NAME, pool, HANDLERS)
