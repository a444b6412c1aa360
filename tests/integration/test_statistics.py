"""The projector keeps the planner's statistics of its tables fresh (autovacuum's rule), with
the real PostgreSQL: a table is analyzed once its changes pass threshold + scale * rows."""

from __future__ import annotations

import asyncio
import uuid

from projections.statistics import Statistics
from service.container import Container
from tests.conftest import eventually


async def _analyzed_rows(c: Container, table: str) -> float:
    async with c.pool.connection() as conn:
        row = await (await conn.execute("select reltuples from pg_class where relname = %s", (table,))).fetchone()
    assert row is not None
    return float(row[0])


async def test_tables_are_analyzed_once_their_changes_pass_the_rule(container: Container) -> None:
    c = container
    table = f"stats_probe_{uuid.uuid4().hex[:8]}"
    async with c.pool.connection() as conn:
        await conn.execute(f"create table {table} (n int)")  # noqa: S608 - a generated name
    try:
        stats = Statistics(c.pool, [table, "no_such_table"], threshold=10, scale=0.5)
        assert await stats.check() == []  # never analyzed, nothing changed yet
        assert await _analyzed_rows(c, table) < 0  # (-1: never analyzed)
        async with c.pool.connection() as conn:
            await conn.execute(f"insert into {table} select generate_series(1, 40)")  # noqa: S608

        async def stale() -> bool:
            return await stats.stale() == [table]

        await eventually(stale, 10, "the insert counted in pg_stat_user_tables")
        # A table someone holds a conflicting lock on is skipped (no queueing), not failed.
        async with c.pool.connection() as holder, holder.transaction():
            await holder.execute(f"lock table {table} in share mode")  # noqa: S608
            assert await asyncio.wait_for(stats.check(), 5) == []
        assert await stale()
        assert await stats.check() == [table]
        assert await _analyzed_rows(c, table) == 40
        assert await stats.check() == []  # nothing changed since
        # 20 more rows: below 10 + 0.5 * 40 = 30 changes, so not yet; 20 more pass it.
        async with c.pool.connection() as conn:
            await conn.execute(f"insert into {table} select generate_series(1, 20)")  # noqa: S608

        async def counted() -> bool:
            async with c.pool.connection() as conn:
                row = await (await conn.execute("select n_mod_since_analyze from pg_stat_user_tables"
                                                " where relname = %s", (table,))).fetchone()
            return row is not None and row[0] == 20

        await eventually(counted, 10, "the 20 rows counted")
        assert await stats.check() == []
        async with c.pool.connection() as conn:
            await conn.execute(f"insert into {table} select generate_series(1, 20)")  # noqa: S608
        await eventually(stale, 10, "the second insert counted")
        assert await stats.check() == [table]
        assert await _analyzed_rows(c, table) == 80
        assert stats.analyzed == {table: 2}
    finally:
        async with c.pool.connection() as conn:
            await conn.execute(f"drop table {table}")  # noqa: S608
