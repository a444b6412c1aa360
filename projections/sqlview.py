"""Applies batches of events to a SQL view, moving its position in the same transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from psycopg import AsyncCursor
from psycopg_pool import AsyncConnectionPool

from projections.envelope import Envelope

Handler = Callable[[AsyncCursor, Envelope], Awaitable[None]]
ANY = ("*", "*")  # the key of a handler for every event


class SqlView:
    """A read model in SQL: handlers by (aggregate, event type), and one position row."""

    def __init__(self, name: str, pool: AsyncConnectionPool, handlers: dict[tuple[str, str], Handler]) -> None:
        self.name, self.pool, self.handlers = name, pool, handlers

    async def position(self) -> tuple[int, int]:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(
                "select position, stream_seq from view_positions where view=%s", (self.name,))).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def apply(self, batch: Sequence[tuple[int, Envelope]]) -> int:
        """Apply the events not yet applied; a redelivered event changes nothing."""
        # Pipeline mode: the statements of a batch go out without waiting for each answer.
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction(), conn.cursor() as cur:
            lock = "select position from view_positions where view=%s for update"
            await cur.execute(lock, (self.name,))
            row = await cur.fetchone()
            if row is None:
                await cur.execute("insert into view_positions values (%s, 0, 0) on conflict do nothing",
                                  (self.name,))
                await cur.execute(lock, (self.name,))
                row = await cur.fetchone()
            done = int(row[0]) if row else 0
            last_pos, last_seq = done, 0
            for seq, env in batch:
                last_seq = seq
                if env.position <= done:
                    continue
                handler = self.handlers.get((env.aggregate, env.type)) or self.handlers.get(ANY)
                if handler is not None:
                    await handler(cur, env)
                last_pos = env.position
            if last_pos > done:
                await cur.execute("update view_positions set position=%s, stream_seq=%s where view=%s",
                                  (last_pos, last_seq, self.name))
            elif last_seq:
                await cur.execute("update view_positions set stream_seq=greatest(stream_seq, %s) where view=%s",
                                  (last_seq, self.name))
        return last_pos

    async def reset(self, tables: Sequence[str]) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            for table in tables:
                await conn.execute(f"delete from {table}")  # noqa: S608 - names are ours
            await conn.execute("delete from view_positions where view=%s", (self.name,))
