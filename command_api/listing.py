"""Reading owned, shareable entities from their SQL views: visibility, filters, paging."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aiohttp import web

from command_api import docsql, wire
from command_api.context import container, fresh, principal
from command_api.filters import Filters
from domain.common import Principal
from domain.errors import NotFound

# Ids in paths: anything else is the router's 404, and fixed paths such as
# /things/configs stay free for their own routes.
ID = "{id:[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}}"


@dataclass(frozen=True)
class Table:
    """Where a view keeps one kind of entity and who it is shared with."""

    view: str          # the view's name, for read-your-writes
    table: str
    shares: str
    share_column: str
    doc: str           # a row as the API's JSON text (command_api.docsql)
    what: str          # "thing" or "channel", for messages
    plural: str        # the list's key in the answer
    # More ids the caller may see (a subquery on one parameter, the caller's id), and the
    # views that keep them, which a read waits for too.
    also_visible: str = ""
    also_views: tuple[str, ...] = ()
    counts: str = ""   # the view's table of counts by owner and status, for unfiltered totals


class Totals:
    """Exact totals of filtered lists, each remembered with the ``changed`` positions its views
    had when it was counted.

    A filtered total is a count of every match, far dearer than the page itself
    (docs/performance.md, "Measurements behind the code"). A view's rows change only
    in the transaction that moves its ``view_positions.changed`` (the last event one of its
    handlers ran for: events it ignores leave it), so when a later page is read in a snapshot
    whose ``changed`` positions equal the remembered ones, the remembered total is that
    snapshot's exact total. Otherwise the list counts again, in the page's statement."""

    def __init__(self, size: int = 1024, keep: float = 30.0) -> None:
        self.size, self.keep = size, keep
        self._known: OrderedDict[tuple[Any, ...], tuple[list[int], int, float]] = OrderedDict()
        # Counts under way: concurrent lists of one key wait for one count, not count together.
        self.counting: dict[tuple[Any, ...], asyncio.Future[None]] = {}

    def get(self, key: tuple[Any, ...]) -> tuple[list[int], int] | None:
        found = self._known.get(key)
        if found is None or time.monotonic() - found[2] > self.keep:
            return None
        self._known.move_to_end(key)
        return found[0], found[1]

    async def settled(self, key: tuple[Any, ...], bound: float = 1.0) -> None:
        """Wait (at most ``bound`` seconds, holding no connection) for a count of ``key`` under
        way in another request: its total is then most likely the one to reuse."""
        under_way = self.counting.get(key)
        if under_way is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(under_way), bound)

    def put(self, key: tuple[Any, ...], positions: list[int], total: int) -> None:
        self._known[key] = (positions, total, time.monotonic())
        self._known.move_to_end(key)
        while len(self._known) > self.size:
            self._known.popitem(last=False)


TOTALS = web.AppKey("filtered_totals", Totals)
_POSITIONS = "select array(select changed from view_positions where view = any(%s) order by view)"


def entity_id(request: web.Request, what: str) -> UUID:
    try:
        return UUID(request.match_info["id"])
    except ValueError as exc:
        raise NotFound(f"{what} not found") from exc


def visible(t: Table, who: Principal) -> tuple[str, list[Any]]:
    """The condition on rows the caller may see: its own and those shared with c_list.

    ``id = any(array(subquery))`` is evaluated once and can use the primary key, so with
    the owner index the planner combines both in a bitmap instead of scanning the table.
    """
    if who.admin:
        return "true", []
    if t.also_visible:
        return (f"(owner = %s or id = any(array(select {t.share_column} from {t.shares}"  # noqa: S608
                f" where user_id = %s and 'c_list' = any(actions))) or id = any(array({t.also_visible})))",
                [who.user_id, who.user_id, who.user_id])
    return (f"(owner = %s or id = any(array(select {t.share_column} from {t.shares}"  # noqa: S608
            " where user_id = %s and 'c_list' = any(actions))))", [who.user_id, who.user_id])


async def get_one(request: web.Request, t: Table) -> web.Response:
    who = principal(request)
    eid = entity_id(request, t.what)
    cond, args = visible(t, who)
    c = container(request)
    await fresh(request, t.view, *t.also_views)
    async with c.pool.connection() as conn:
        row = await (await conn.execute(
            f"select {t.doc} from {t.table} where id = %s and {cond}", [eid, *args])).fetchone()  # noqa: S608
    if row is None:
        raise NotFound(f"{t.what} not found")
    return wire.raw_json(row[0].encode())


def _shared_ids(t: Table, who: Principal) -> tuple[str, list[Any]]:
    """The ids others share with the caller (with c_list), and those also visible to it."""
    sql = f"select {t.share_column} from {t.shares} where user_id = %s and 'c_list' = any(actions)"  # noqa: S608
    args: list[Any] = [who.user_id]
    if t.also_visible:
        sql += f" union {t.also_visible}"
        args.append(who.user_id)
    return sql, args


def _unfiltered_total(t: Table, who: Principal, status: str | None) -> tuple[str, list[Any]]:
    """The exact total of an unfiltered list from the counts kept with the rows: what the
    caller owns (a lookup) plus what others share with it (a join on its few shares)."""
    by_status, args = ("and status = %s", [status]) if status else ("", [])
    if who.admin:
        return f"select coalesce(sum(n), 0) from {t.counts} where true {by_status}", args  # noqa: S608
    shared, shared_args = _shared_ids(t, who)
    return (f"select (select coalesce(sum(n), 0) from {t.counts} where owner = %s {by_status})"  # noqa: S608
            f" + (select count(*) from {t.table} where id = any(array({shared})) and owner <> %s {by_status})",
            [who.user_id, *args, *shared_args, who.user_id, *args])


def _own_and_shared_page(t: Table, who: Principal, filters: list[str], filter_args: list[Any],
                         limit: int, offset: int) -> tuple[str, list[Any]]:
    """A page of what the caller owns and what is shared with it, in creation order
    (``page_id, pos`` rows).

    Each part is read in order from its own index and stops after offset + limit rows, so a
    page costs the same with a million things as with a hundred (one OR over both would
    gather every match and sort them). The owned part is written ``owner = any(array)``,
    ``order by owner, created_pos``: only the (owner, created_pos) index gives that order,
    whereas with ``owner = x`` PostgreSQL may walk the global created_pos index instead and
    skip every other owner's older rows (docs/performance.md, "Measurements behind the code")."""
    shared, shared_args = _shared_ids(t, who)
    more = "".join(f" and {f}" for f in filters)
    n = offset + limit
    sql = ("select page_id, pos from ("  # noqa: S608
           f"(select id as page_id, created_pos as pos from {t.table} where owner = any(%s){more}"
           " order by owner, created_pos limit %s)"
           f" union all (select id as page_id, created_pos as pos from {t.table}"
           f" where id = any(array({shared})) and owner <> %s{more} order by created_pos limit %s)"
           ") parts order by pos limit %s offset %s")
    return sql, [[who.user_id], *filter_args, n, *shared_args, who.user_id, *filter_args, n, limit, offset]


async def total_and_page(conn: Any, total_sql: str, total_args: list[Any], page_sql: str,
                         page_args: list[Any], table: str, doc: str) -> tuple[int, str]:
    """The total and the page's documents joined by commas, read by one statement: one
    snapshot for both (so the total matches the rows) in one round trip."""
    (total,), docs = await heads_and_page(conn, [(total_sql, total_args)], page_sql, page_args, table, doc)
    return int(total), docs


async def heads_and_page(conn: Any, heads: list[tuple[str, list[Any]]], page_sql: str,
                         page_args: list[Any], table: str, doc: str) -> tuple[list[Any], str]:
    """Scalar subqueries (``heads``: a total, positions) and the page's documents joined by
    commas, read by one statement.

    ``page_sql`` gives the page's ``page_id, pos`` rows; only those rows are rendered (by
    primary key), so an offset deep into the table skips ids, not documents."""
    args = [a for _sql, head_args in heads for a in head_args]
    row = await (await conn.execute(
        "select " + "".join(f"({head_sql}), " for head_sql, _args in heads)  # noqa: S608
        + f"(select coalesce(string_agg({doc}, ',' order by pos), '')"
        f" from ({page_sql}) page join {table} on id = page_id)", [*args, *page_args])).fetchone()
    return list(row[:-1]), row[-1]


async def list_page(request: web.Request, t: Table) -> web.Response:
    """``{limit, offset, total, <plural>}``: exact total under the filters, creation order."""
    who = principal(request)
    offset, limit = wire.paging(request)
    chosen = Filters.of(request)
    status = chosen.status
    cond, args = visible(t, who)
    filters, filter_args = chosen.sql()
    sql_where = " and ".join([cond, *filters])
    args = [*args, *filter_args]
    counted = not (t.counts and not chosen.narrowed)
    if not counted:
        total_sql, total_args = _unfiltered_total(t, who, status)
    else:
        total_sql, total_args = f"select count(*) from {t.table} where {sql_where}", args  # noqa: S608
    if who.admin:
        page_sql = (f"select id as page_id, created_pos as pos from {t.table} where {sql_where}"  # noqa: S608
                    " order by created_pos limit %s offset %s")
        page_args = [*args, limit, offset]
    else:
        page_sql, page_args = _own_and_shared_page(t, who, filters, filter_args, limit, offset)
    c = container(request)
    await fresh(request, t.view, *t.also_views)
    totals = request.app[TOTALS]
    key = (t.table, total_sql, *map(str, total_args))
    if counted:
        await totals.settled(key)
    async with c.pool.connection() as conn:
        if counted:
            total, docs = await _counted_page(conn, totals, key, t, total_sql, total_args,
                                              page_sql, page_args)
        else:
            total, docs = await total_and_page(conn, total_sql, total_args, page_sql, page_args,
                                               t.table, t.doc)
    return wire.raw_json(docsql.page(limit, offset, total, t.plural, docs))


async def _counted_page(conn: Any, totals: Totals, key: tuple[Any, ...], t: Table, total_sql: str,
                        total_args: list[Any], page_sql: str, page_args: list[Any]) -> tuple[int, str]:
    """A page whose total is a count: the remembered count when the views have not moved
    since (see Totals), else counted again with the page, in one statement."""
    views = sorted({t.view, *t.also_views})
    known = totals.get(key)
    if known is not None:
        (positions,), docs = await heads_and_page(conn, [(_POSITIONS, [views])], page_sql, page_args,
                                                  t.table, t.doc)
        if positions == known[0]:
            return known[1], docs
    mine: asyncio.Future[None] | None = None
    if key not in totals.counting:  # (else another count is under way: this one is not waited for)
        mine = totals.counting[key] = asyncio.get_running_loop().create_future()
    try:
        (total, positions), docs = await heads_and_page(
            conn, [(total_sql, total_args), (_POSITIONS, [views])], page_sql, page_args, t.table, t.doc)
        totals.put(key, positions, int(total))
    finally:
        if mine is not None:
            del totals.counting[key]
            mine.set_result(None)
    return int(total), docs
