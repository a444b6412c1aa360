"""ConfigsView: bootstrap configurations in SQL, found by thing id or by external id."""

from __future__ import annotations

from psycopg import AsyncCursor
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from domain.bootstrap import Config
from projections.envelope import Envelope
from projections.sqlview import Handlers, SqlView

NAME = "configs"
TABLES = ("configs_view",)


async def _created(cur: AsyncCursor, e: Envelope) -> None:
    d = e.data
    await cur.execute(
        "insert into configs_view (thing_id, owner, external_id, external_key, name, content, channels,"
        " client_cert, client_key, ca_cert, state, created_at, updated_at, created_pos)"
        " values (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,0,%s,%s,%s)"
        " on conflict (thing_id) do update set owner=excluded.owner, external_id=excluded.external_id,"
        " external_key=excluded.external_key, name=excluded.name, content=excluded.content,"
        " channels=excluded.channels, client_cert=excluded.client_cert, client_key=excluded.client_key,"
        " ca_cert=excluded.ca_cert, state=0, updated_at=excluded.updated_at",
        (str(d["thing_id"]), str(d["owner"]), d["external_id"], d["external_key"], d["name"], d["content"],
         Jsonb(d["channels"]), d["client_cert"], d["client_key"], d["ca_cert"], e.occurred_at,
         e.occurred_at, e.position))


async def _by_config(cur: AsyncCursor, e: Envelope, sets: str, args: tuple[object, ...]) -> None:
    # The config's aggregate id is derived from its thing's; the view is keyed by the thing.
    await cur.execute(f"update configs_view set {sets}, updated_at=%s where config_id=%s",  # noqa: S608
                      (*args, e.occurred_at, e.aggregate_id))


async def _updated(cur: AsyncCursor, e: Envelope) -> None:
    await _by_config(cur, e, "name=%s, content=%s", (e.data["name"], e.data["content"]))


async def _certs(cur: AsyncCursor, e: Envelope) -> None:
    d = e.data
    await _by_config(cur, e, "client_cert=%s, client_key=%s, ca_cert=%s",
                     (d["client_cert"], d["client_key"], d["ca_cert"]))


async def _channels(cur: AsyncCursor, e: Envelope) -> None:
    await _by_config(cur, e, "channels=%s", (Jsonb(e.data["channels"]),))


async def _state(cur: AsyncCursor, e: Envelope) -> None:
    await _by_config(cur, e, "state=%s", (e.data["state"],))


async def _removed(cur: AsyncCursor, e: Envelope) -> None:
    await cur.execute("delete from configs_view where config_id=%s", (e.aggregate_id,))


async def _created_with_id(cur: AsyncCursor, e: Envelope) -> None:
    await _created(cur, e)
    await cur.execute("update configs_view set config_id=%s where thing_id=%s",
                      (e.aggregate_id, str(e.data["thing_id"])))


HANDLERS: Handlers = {
    Config.Created: _created_with_id,
    Config.Readded: _created_with_id,
    Config.Updated: _updated,
    Config.CertsUpdated: _certs,
    Config.ChannelsUpdated: _channels,
    Config.StateChanged: _state,
    Config.Removed: _removed,
}


def configs_view(pool: AsyncConnectionPool) -> SqlView:
    return SqlView(NAME, pool, HANDLERS)
