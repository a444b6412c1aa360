"""Replay: rebuild every view from position 0 into fresh storage and compare it with the live one.

The rebuild reads the store through the projector's own path (``Store.read``, then each
envelope encoded and decoded as on the bus) into a new PostgreSQL schema
(``replay_<hex>``, ``search_path`` set on a pool of its own, ``projections/schema.sql`` run
there) and a new Redis key prefix (``<prefix>replay_<hex>:``). It never writes the live views.

Comparing at one position while the service keeps writing: each live view is read in one
consistent snapshot together with its own position ``P`` (a REPEATABLE READ transaction for
SQL, where rows and position move in one transaction; for Redis, a read between two equal
readings of the view's position, since every change of a Redis view moves its position in
the same MULTI/EXEC). The fresh copy, rebuilt up to the head recorded at the start, is then
moved on from the store up to exactly ``P`` and digested. Both digests are of the same
position, however far the live view got meanwhile; filtering live rows by ``created_pos``
would not do, as later events also change rows created earlier.

Limits: a live view still below the head after ``wait`` seconds is reported ``LAGGING``; a
Redis view that moved during each of a few attempts to read it is reported ``BUSY``. Both
fail the replay, like ``MISMATCH``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from infra import sql
from infra.settings import Settings
from infra.store import Store
from service import digest
from service.container import Views
from workers.feed import feed


class Storage(Views):
    """Where a set of views lives (a SQL pool, a Redis client and key prefix); the views are
    the container's own list, built over this storage."""

    def __init__(self, settings: Settings, pool: AsyncConnectionPool, redis: Redis,
                 store: Store | None = None, database_url: str = "") -> None:
        self.settings, self.pool, self.redis = settings, pool, redis
        self.store, self.database_url = store, database_url or settings.database_url or ""
        self.extras: dict[str, Any] = {}  # the Redis views, made once (as the container's)


@dataclass
class ViewResult:
    """One view compared: the rebuilt digest, the live one, at which position."""

    view: str
    digest: str
    live: str
    position: int
    status: str  # OK, MISMATCH, LAGGING or BUSY

    def line(self) -> str:
        return f"{self.view} {self.digest} live={self.live} {self.status}"


@dataclass
class ReplayReport:
    head: int
    events: int
    seconds: float
    schema: str
    prefix: str
    kept: bool
    views: list[ViewResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.views) and all(v.status == "OK" for v in self.views)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        kept = f"; kept schema {self.schema} and prefix {self.prefix}" if self.kept else ""
        return [*(v.line() for v in self.views),
                f"replayed {self.events} events up to position {self.head} in {self.seconds:.2f}s "
                f"({self.rate:.0f} events/s){kept}"]


async def _reached(view: Any, head: int, deadline: float) -> bool:
    while (await view.position())[0] < head:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


# -- fresh storage ---------------------------------------------------------------------------
async def _fresh_pool(database_url: str, schema: str) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(database_url, min_size=1, max_size=10, open=False,
                               kwargs={"autocommit": True, "options": f"-c search_path={schema}"})
    await pool.open(wait=True, timeout=15)
    async with pool.connection() as conn:
        await sql.migrate(conn)
    return pool


async def _drop(live: Storage, schema: str, prefix: str) -> None:
    async with live.pool.connection() as conn:
        await conn.execute(f"drop schema if exists {schema} cascade")
    keys = [k async for k in live.redis.scan_iter(match=f"{prefix}*", count=1000)]
    for i in range(0, len(keys), 1000):
        await live.redis.delete(*keys[i:i + 1000])


# -- the replay ------------------------------------------------------------------------------
async def replay(live: Any, keep: bool = False, wait: float = 30.0) -> ReplayReport:
    """Rebuild every view of ``live`` (a Container or a Storage) into fresh storage, and compare.

    ``wait`` bounds how long a live view may take to reach the head recorded at the start.
    """
    store: Store = live.store
    tag = secrets.token_hex(6)
    schema, prefix = f"replay_{tag}", f"{live.settings.redis_prefix}replay_{tag}:"
    head = await store.max_position()
    async with live.pool.connection() as conn:
        await conn.execute(f"create schema {schema}")
    pool: AsyncConnectionPool | None = None
    try:
        pool = await _fresh_pool(live.database_url, schema)
        fresh = Storage(replace(live.settings, redis_prefix=prefix), pool, live.redis, store)
        rebuilt = {v.name: v for v in fresh.views()}
        started = time.monotonic()
        count = await feed(store, list(rebuilt.values()), 0, head)
        report = ReplayReport(head, count, time.monotonic() - started, schema, prefix, keep)
        deadline = time.monotonic() + wait
        for view in live.views():
            report.views.append(await _compare(store, view, rebuilt[view.name], head, deadline,
                                               live.settings.redis_prefix, prefix))
        return report
    finally:
        if pool is not None:
            await pool.close()
        if not keep:
            await _drop(live, schema, prefix)


async def _compare(store: Store, live: Any, fresh: Any, head: int, deadline: float,
                   live_prefix: str, fresh_prefix: str) -> ViewResult:
    if not await _reached(live, head, deadline):
        return ViewResult(live.name, "-", "-", head, "LAGGING")
    seen = await digest.snapshot(live, live_prefix)
    if seen is None:
        return ViewResult(live.name, "-", "-", head, "BUSY")
    position, live_digest = seen
    # Move the fresh copy to exactly the live snapshot's position (the service may write on).
    await feed(store, [fresh], (await fresh.position())[0], position)
    mine = await digest.snapshot(fresh, fresh_prefix)
    assert mine is not None  # nobody else writes the fresh copy
    status = "OK" if mine[1] == live_digest and mine[0] == position else "MISMATCH"
    return ViewResult(live.name, mine[1], live_digest, position, status)


async def open_live(settings: Settings) -> Storage:
    """The live store and views of a running service, from its settings (no NATS needed)."""
    from domain.app import Smq
    from service.container import store_env

    if not (settings.database_url and settings.redis_url):
        raise ValueError("replay needs SMQ_DATABASE_URL and SMQ_REDIS_URL (`smq serve` prints them)")
    store = Store(Smq(env=store_env(settings.database_url)), workers=2)
    pool = AsyncConnectionPool(settings.database_url, min_size=1, max_size=10, open=False,
                               kwargs={"autocommit": True})
    await pool.open(wait=True, timeout=15)
    redis = Redis.from_url(settings.redis_url)
    return Storage(settings, pool, redis, store)


async def close_live(live: Storage) -> None:
    await live.redis.aclose()
    await live.pool.close()
    if live.store is not None:
        live.store.close()


async def run(settings: Settings, keep: bool = False, wait: float = 30.0) -> bool:
    """``smq replay``: print one line per view and the rate; True when every view matched."""
    live = await open_live(settings)
    try:
        report = await replay(live, keep=keep, wait=wait)
    finally:
        await close_live(live)
    for line in report.lines():
        print(line, flush=True)
    return report.ok

