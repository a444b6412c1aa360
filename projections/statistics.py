"""The planner's statistics of the SQL views' tables, kept fresh by the projector.

The list queries are planned from these statistics: with a table grown from nothing to a
million rows and never analyzed, PostgreSQL misestimated an owner's rows and read the owner's
whole set to sort it (docs/performance.md, "Measurements behind the code").
Autovacuum does the same job when it is on (it is off on some servers: this machine's), and
only once a minute at best; a bulk seed of 100,000 things takes half of that. So the process
that writes the views also analyzes them, by autovacuum's own rule: a table is analyzed once
the rows changed since its last analysis exceed ``threshold + scale * rows``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("smq.statistics")


class Statistics:
    def __init__(self, pool: AsyncConnectionPool, tables: Iterable[str], every: float = 5.0,
                 threshold: int = 1000, scale: float = 0.2) -> None:
        self.pool, self.tables = pool, sorted(set(tables))
        self.every, self.threshold, self.scale = every, threshold, scale
        self.analyzed: dict[str, int] = {}  # how many times each table was analyzed here
        self._stop = asyncio.Event()

    async def stale(self) -> list[str]:
        """The tables whose changes since their last analysis passed the rule."""
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(
                "select s.relname from pg_stat_user_tables s join pg_class c on c.oid = s.relid"
                " where s.schemaname = current_schema() and s.relname = any(%s)"
                " and s.n_mod_since_analyze > %s + %s * greatest(c.reltuples, 0)",
                (self.tables, self.threshold, self.scale))).fetchall()
        return sorted(r[0] for r in rows)

    async def check(self) -> list[str]:
        """Analyze the stale tables; returns those analyzed (a locked one waits a round)."""
        tables = await self.stale()
        done = []
        for table in tables:
            try:
                async with self.pool.connection() as conn, conn.transaction():
                    # Never queue behind a lock (a start's migration, a running vacuum) and
                    # make the view's writers queue behind this: try again on the next round.
                    await conn.execute("set local lock_timeout = '200ms'")
                    await conn.execute(sql.SQL("analyze {}").format(sql.Identifier(table)))
            except psycopg.errors.LockNotAvailable:
                log.debug("statistics: %s is locked; next round", table)
                continue
            self.analyzed[table] = self.analyzed.get(table, 0) + 1
            done.append(table)
            log.info("analyzed %s", table)
        return done

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - statistics are an optimisation: go on
                log.warning("statistics: %s", exc)
            try:
                await asyncio.wait_for(self._stop.wait(), self.every)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()
