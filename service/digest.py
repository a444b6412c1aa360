"""A view's digest at its own position, read in one consistent snapshot, so that two copies of a view compare."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from projections import catalogue

# The tables of each SQL view, and the key prefixes of each Redis view (from the catalogue).
SQL_TABLES: dict[str, tuple[str, ...]] = {v.name: v.tables for v in catalogue.SQL_VIEWS}
REDIS_KEYS: dict[str, tuple[str, ...]] = {v.name: v.key_prefixes() for v in catalogue.REDIS_VIEWS}
SNAPSHOT_ATTEMPTS = 20


async def _sql_snapshot(pool: AsyncConnectionPool, view: str, tables: Iterable[str]) -> tuple[int, str]:
    """The view's position and the digest of its rows, from one consistent snapshot."""
    h = hashlib.sha256()
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("set transaction isolation level repeatable read, read only")
        row = await (await conn.execute("select position from view_positions where view=%s",
                                        (view,))).fetchone()
        for table in tables:
            h.update(f"table {table}\n".encode())
            await _digest_rows(conn, table, h)
    return (int(row[0]) if row else 0), h.hexdigest()


async def _digest_rows(conn: AsyncConnection, table: str, h: Any) -> None:
    # Each row as JSON (keys in one order), sorted bytewise: a canonical order of any table.
    query = f'select to_jsonb(t)::text from {table} t order by to_jsonb(t)::text collate "C"'  # noqa: S608
    async with conn.cursor() as cur:
        async for (text,) in cur.stream(query):
            h.update(text.encode())
            h.update(b"\n")


async def _redis_pairs(redis: Redis, prefix: str, patterns: Iterable[str]) -> list[tuple[str, str]]:
    found: set[bytes] = set()
    for p in patterns:
        found.update([k async for k in redis.scan_iter(match=f"{prefix}{p}*", count=1000)])
    keys = sorted(found)
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
    kinds = await pipe.execute()
    for key, kind in zip(keys, kinds, strict=True):
        pipe.hgetall(key) if kind == b"hash" else pipe.get(key)
    values = await pipe.execute()
    pairs = []
    for key, value in zip(keys, values, strict=True):
        if isinstance(value, dict):
            value = b"&".join(k + b"=" + v for k, v in sorted(value.items()))
        if value is not None:  # gone between the scan and the read
            pairs.append((key.decode()[len(prefix):], value.decode()))
    return pairs


async def _redis_snapshot(view: Any, prefix: str, patterns: Iterable[str]) -> tuple[int, str] | None:
    """The view's position and the digest of its keys, or None if it kept moving."""
    for _ in range(SNAPSHOT_ATTEMPTS):
        before = (await view.position())[0]
        pairs = await _redis_pairs(view.redis, prefix, patterns)
        if (await view.position())[0] == before:  # every change moves the position with it
            h = hashlib.sha256()
            for key, value in pairs:
                h.update(f"{key}\t{value}\n".encode())
            return before, h.hexdigest()
    return None


async def snapshot(view: Any, prefix: str) -> tuple[int, str] | None:
    if view.name in REDIS_KEYS:
        return await _redis_snapshot(view, prefix, REDIS_KEYS[view.name])
    if view.name not in SQL_TABLES:
        raise LookupError(f"replay does not know the tables of view {view.name!r}")
    return await _sql_snapshot(view.pool, view.name, SQL_TABLES[view.name])
