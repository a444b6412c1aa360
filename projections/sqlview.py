"""Applies batches of events to SQL views, moving their positions in the same transaction.

The views of one pool that a projector feeds together are applied in one transaction
(``apply_together``): one connection, one lock of their position rows, one update of them.
A batch then costs one round of statements whatever the number of views, and the views of
a group always move together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from psycopg import AsyncCursor, DataError
from psycopg_pool import AsyncConnectionPool

from projections.envelope import Envelope, Kinds, name_of, safe

log = logging.getLogger("smq.projector")

Handler = Callable[[AsyncCursor, Envelope], Awaitable[None]]
ANY = ("*", "*")  # the key of a handler for every event


_encode_rows = msgspec.json.Encoder().encode


async def insert_records(cur: AsyncCursor, table: str, columns: Sequence[tuple[str, str]],
                         rows: Sequence[Any], conflict: str = "") -> None:
    """Insert ``rows`` (dicts by column name, or structs whose fields are the columns) into
    ``table`` with one statement: they travel as one JSON array that ``jsonb_to_recordset``
    reads with ``columns`` (name, SQL type). The projector's runs of frequent events go this
    way: psycopg's ``executemany`` dumps every parameter of every row in Python, three times
    the CPU (docs/performance.md). Text no UTF-8 can hold raises ``UnicodeEncodeError``, NUL a
    ``DataError``, as ``executemany`` did."""
    if not rows:
        return
    names = ", ".join(name for name, _ in columns)
    types = ", ".join(f"{name} {sql}" for name, sql in columns)
    await cur.execute(
        f"insert into {table} ({names}) select {names} from jsonb_to_recordset(%s::text::jsonb)"  # noqa: S608
        f" as r({types}) {conflict}", (_encode_rows(rows).decode(),))


class Batched:
    """A handler given a run of consecutive events of its kind at once (events the view
    ignores do not break a run), so it can write them with a few statements, not one each."""

    def __init__(self, apply: Callable[[AsyncCursor, list[Envelope]], Awaitable[None]]) -> None:
        self.apply = apply


# A view's handlers, keyed by the event classes themselves (or ANY for every event).
Handlers = dict[Any, Handler | Batched]

# Lock the rows of the views (in name order, so two groups sharing a view cannot deadlock).
_LOCK = "select view, position from view_positions where view = any(%s) order by view for update"
# A view's position only grows; its stream sequence follows the event that moved it, or
# else the highest seen (a batch of events it had already applied).
# ``changed``: the position of the last event whose handler ran, i.e. the last that may have
# changed the view's rows (lists remember filtered totals by it: command_api.listing.Totals).
_MOVE = """
update view_positions as vp
   set stream_seq = case when m.pos > vp.position then m.seq else greatest(vp.stream_seq, m.seq) end,
       position = greatest(vp.position, m.pos),
       changed = greatest(vp.changed, m.changed)
  from (select unnest(%s::text[]) as view, unnest(%s::bigint[]) as pos, unnest(%s::bigint[]) as seq,
               unnest(%s::bigint[]) as changed) as m
 where vp.view = m.view
"""


class SqlView:
    """A read model in SQL: handlers by event class (looked up by the envelope's
    (aggregate, event type), ``envelope.name_of``), and one position row."""

    def __init__(self, name: str, pool: AsyncConnectionPool, handlers: Handlers,
                 sealed: bool = True) -> None:
        self.name, self.pool = name, pool
        self.handlers: dict[tuple[str, str], Handler | Batched] = {
            (key if isinstance(key, tuple) else name_of(key)): h for key, h in handlers.items()}
        # The events whose sealed fields it reads, opened by the projector (None: any event's):
        # those it handles, or none (``sealed`` False: it reads no credential).
        self.reads_sealed: Kinds | None = (
            frozenset() if not sealed else None if ANY in self.handlers else frozenset(self.handlers))

    async def position(self) -> tuple[int, int]:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(
                "select position, stream_seq from view_positions where view=%s", (self.name,))).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def apply(self, batch: Sequence[tuple[int, Envelope]]) -> int:
        """Apply the events not yet applied; a redelivered event changes nothing."""
        return (await apply_together([self], batch))[0]

    async def _handle(self, cur: AsyncCursor, batch: Sequence[tuple[int, Envelope]], done: int,
                      kinds: set[tuple[str, str]]) -> tuple[int, int]:
        """Apply the batch's new events (``kinds``: the batch's (aggregate, event type)s); (the
        last position, the last position handled or 0)."""
        handlers = self.handlers
        every = handlers.get(ANY)
        if every is None and handlers.keys().isdisjoint(kinds):  # nothing of this view's
            for _seq, env in reversed(batch):
                if env.position > done:
                    return env.position, 0
            return done, 0
        last, changed = done, 0
        run: list[Envelope] = []
        run_of: Batched | None = None
        for _seq, env in batch:
            if env.position <= done:
                continue
            last = env.position
            handler = handlers.get((env.aggregate, env.type), every)
            if handler is None:
                continue
            changed = last
            if run and handler is not run_of:
                await run_of.apply(cur, run)  # type: ignore[union-attr]
                run = []
            if isinstance(handler, Batched):
                run_of = handler
                run.append(env)
            else:
                await handler(cur, env)
        if run:
            await run_of.apply(cur, run)  # type: ignore[union-attr]
        return last, changed

    async def reset(self, tables: Sequence[str]) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            for table in tables:
                await conn.execute(f"delete from {table}")  # noqa: S608 - names are ours
            await conn.execute("delete from view_positions where view=%s", (self.name,))


async def apply_together(views: Sequence[SqlView], batch: Sequence[tuple[int, Envelope]]) -> list[int]:
    """Apply ``batch`` to views sharing one pool, in one transaction; their new positions.

    Text PostgreSQL cannot hold (NUL, a lone surrogate: an older version's store may have
    events with some) is made safe in the views, never a reason to stop: a batch refused for
    it is applied again with U+FFFD in its place (``envelope.safe``)."""
    if not views:
        return []
    try:
        return await _apply_together(views, batch)
    except (DataError, UnicodeEncodeError) as exc:
        made_safe = [(seq, safe(env)) for seq, env in batch]
        changed = [env.position for (_, env), (_, s) in zip(batch, made_safe, strict=True) if s is not env]
        if not changed:
            raise
        log.warning("views %s: events at positions %s hold text PostgreSQL cannot hold (%s); "
                    "the views get U+FFFD in its place", [v.name for v in views], changed,
                    type(exc).__name__)
        return await _apply_together(views, made_safe)


async def _apply_together(views: Sequence[SqlView], batch: Sequence[tuple[int, Envelope]]) -> list[int]:
    names = [v.name for v in views]
    # Pipeline mode: the statements of a batch go out without waiting for each answer.
    async with views[0].pool.connection() as conn, conn.pipeline(), conn.transaction(), conn.cursor() as cur:
        await cur.execute(_LOCK, (names,))
        done = {view: int(pos) for view, pos in await cur.fetchall()}
        if len(done) < len(names):
            await cur.execute("insert into view_positions select unnest(%s::text[]), 0, 0 on conflict do nothing",
                              ([n for n in names if n not in done],))
            await cur.execute(_LOCK, (names,))
            done = {view: int(pos) for view, pos in await cur.fetchall()}
        kinds = {(env.aggregate, env.type) for _seq, env in batch}
        handled = [await v._handle(cur, batch, done[v.name], kinds) for v in views]
        reached = [last for last, _changed in handled]
        if batch:
            last_seq = batch[-1][0]
            await cur.execute(_MOVE, (names, reached, [last_seq] * len(names),
                                      [changed for _last, changed in handled]))
    return reached


async def apply_batch(views: Sequence[Any], batch: Sequence[tuple[int, Envelope]]) -> list[int]:
    """``batch`` applied to every view at once: the SQL views of one pool in one transaction
    (``apply_together``), each other view by itself; their new positions, in ``views`` order.
    The projector and the replay both apply batches this way."""
    together: dict[int, list[SqlView]] = {}
    alone: list[Any] = []
    for v in views:
        if isinstance(v, SqlView):
            together.setdefault(id(v.pool), []).append(v)
        else:
            alone.append(v)
    groups = list(together.values())
    results = await asyncio.gather(*(apply_together(g, batch) for g in groups),
                                   *(v.apply(batch) for v in alone))
    reached: dict[str, int] = {}
    for group, positions in zip(groups, results, strict=False):
        reached.update(zip((v.name for v in group), positions, strict=True))
    for v, pos in zip(alone, results[len(groups):], strict=True):
        reached[v.name] = pos
    return [reached[v.name] for v in views]
