"""The SQL side of the views: a psycopg pool and the schema."""

from __future__ import annotations

from importlib import resources

import msgspec
from psycopg import AsyncConnection
from psycopg.types.json import set_json_dumps
from psycopg_pool import AsyncConnectionPool


async def open_pool(url: str, max_size: int = 10) -> AsyncConnectionPool:
    # Sessions in UTC: timestamps come back with datetime.timezone.utc, which the answers
    # render without a time zone conversion (the server's zone, a ZoneInfo, was a fifth of
    # a list's time). Set after connecting, not as a startup option (PgBouncer refuses those);
    # where a pooler loses it, rendering converts, as before.
    pool = AsyncConnectionPool(url, min_size=1, max_size=max_size, open=False,
                               kwargs={"autocommit": True}, configure=_utc)
    try:
        await pool.open(wait=True, timeout=15)
        async with pool.connection() as conn:
            await migrate(conn)
    except BaseException:  # not left trying to connect in the background
        await pool.close()
        raise
    return pool


async def _utc(conn: AsyncConnection) -> None:
    await conn.execute("set timezone to 'UTC'")
    # The views' JSON (``Jsonb`` parameters) written by msgspec: the projector writes every
    # event's data this way (json.dumps was a few % of its CPU). Text no UTF-8 holds raises
    # UnicodeEncodeError, which the projector handles as PostgreSQL's refusal of it.
    set_json_dumps(msgspec.json.encode, conn)


async def migrate(conn: AsyncConnection) -> None:
    """Create the view tables; every statement is idempotent. One lock so that two starts don't race."""
    sql = resources.files("projections").joinpath("schema.sql").read_text()
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(7423001)")
        await conn.execute(sql)
