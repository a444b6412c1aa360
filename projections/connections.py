"""ConnectionsView: which things are connected to which channels, and the users' policies on
channels, in SQL, for the lists of connections and for what a policy lets a user see.

A row is kept once made: disconnecting (or revoking) clears it and ``active``, so its
``created_at`` stays the aggregate's creation time, as the command's answer shows it.
A row that becomes active again takes the position of that event: lists follow the order
in which connections were made. A removed thing or channel takes its rows with it.
"""

from __future__ import annotations

from psycopg import AsyncCursor, sql
from psycopg_pool import AsyncConnectionPool

from domain.channels import Channel
from domain.connections import Connection
from domain.policies import Policy
from domain.things import Thing
from projections.envelope import Envelope
from projections.sqlview import Batched, Handler, Handlers, SqlView

NAME = "connections"
TABLES = ("connections", "channel_policies")


async def _conn_created(cur: AsyncCursor, events: list[Envelope]) -> None:
    await cur.executemany(
        "insert into connections (id, channel_id, thing_id, actions, active, created_at, updated_at,"
        " created_pos) values (%s,%s,%s,'{}',false,%s,%s,%s) on conflict (id) do nothing",
        [(e.aggregate_id, str(e.data["channel_id"]), str(e.data["thing_id"]), e.occurred_at,
          e.occurred_at, e.position) for e in events])


def _activate(table: str) -> Handler:
    """A row made active with the event's actions; it takes the event's position only if it
    was inactive (lists follow the order in which connections were made)."""
    query = sql.SQL(
        "update {} set owner=%s, actions=%s, updated_at=%s,"
        " created_pos = case when active then created_pos else %s end, active=true where id=%s"
    ).format(sql.Identifier(table))

    async def activated(cur: AsyncCursor, e: Envelope) -> None:
        await cur.execute(query, (str(e.data["owner"]), list(e.data["actions"]), e.occurred_at, e.position,
                                  e.aggregate_id))

    return activated


def _deactivate(table: str) -> Handler:
    """A row kept, its actions cleared and made inactive."""
    query = sql.SQL("update {} set actions='{{}}', active=false, updated_at=%s where id=%s").format(
        sql.Identifier(table))

    async def deactivated(cur: AsyncCursor, e: Envelope) -> None:
        await cur.execute(query, (e.occurred_at, e.aggregate_id))

    return deactivated


async def _policy_created(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute(
        "insert into channel_policies (id, subject, object, actions, active, created_at, updated_at,"
        " created_pos) values (%s,%s,%s,'{}',false,%s,%s,%s) on conflict (id) do nothing",
        (e.aggregate_id, str(e.data["subject"]), str(e.data["object_id"]), e.occurred_at,
         e.occurred_at, e.position))


async def _thing_removed(cur: AsyncCursor, e: Envelope) -> None:
    # A scan of the table (its indexes hold active rows only): removals are rare, a failed
    # provisioning's compensation, which has disconnected the layout's pairs already.
    await cur.execute("delete from connections where thing_id = %s", (e.aggregate_id,))


async def _channel_removed(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute("delete from connections where channel_id = %s", (e.aggregate_id,))
    await cur.execute("delete from channel_policies where object = %s", (e.aggregate_id,))


HANDLERS: Handlers = {
    Connection.Created: Batched(_conn_created),
    Connection.Connected: _activate("connections"),
    Connection.Disconnected: _deactivate("connections"),
    Policy.Created: _policy_created,
    Policy.Assigned: _activate("channel_policies"),
    Policy.Revoked: _deactivate("channel_policies"),
    # A removed thing or channel is forgotten with its connections and policies.
    Thing.Removed: _thing_removed,
    Channel.Removed: _channel_removed,
}


def connections_view(pool: AsyncConnectionPool) -> SqlView:
    return SqlView(NAME, pool, HANDLERS)
