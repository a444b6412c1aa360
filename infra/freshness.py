"""Read-your-writes: a command remembers its position for its caller; that caller's
next query waits, within a bound, until the views it reads have reached it.

Only the caller's own last write is waited for, so unrelated writes never slow a query.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from infra import metrics
from infra.fastredis import ScriptHost

log = logging.getLogger("smq.freshness")

# KEYS: the users' keys; ARGV: their positions, then the time to keep them. Each key only grows.
_MAX = """
local ttl = ARGV[#ARGV]
for i, key in ipairs(KEYS) do
  local cur = tonumber(redis.call('GET', key) or '0')
  if tonumber(ARGV[i]) > cur then redis.call('SET', key, ARGV[i], 'EX', ttl) end
end
return 1
"""
KEEP = 86400  # a day at most: past that, the views are long past any write
SAY_EVERY = 60.0  # seconds between the WARNING lines about stale reads (each is counted)


def _fatal(exc: BaseException) -> bool:
    """A cancellation or an exit: the round's task ends, so whatever waits on it is failed."""
    return not isinstance(exc, Exception)


def _fail(waiters: list[asyncio.Future[Any]], exc: BaseException) -> None:
    for w in waiters:
        if not w.done():
            if isinstance(exc, asyncio.CancelledError):
                w.cancel()
            else:
                w.set_exception(exc)


class Freshness:
    def __init__(self, redis: Redis, pool: AsyncConnectionPool, prefix: str, bound: float,
                 redis_views: Mapping[str, str] | None = None, scripts: ScriptHost | None = None) -> None:
        self.redis, self.pool, self.prefix, self.bound = redis, pool, prefix, bound
        # The Redis views, each with the key of its position (``catalogue.redis_positions``).
        self.redis_views: dict[str, str] = dict(redis_views or {})
        self.known: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._max = (scripts if scripts is not None else redis).register_script(_MAX)
        # Concurrent commands' records go to Redis together: one script call for all of them.
        self._pending: dict[str, int] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._flusher: asyncio.Task[None] | None = None  # writing while it runs
        # Concurrent queries' reads of their callers' records go to Redis together: one MGET.
        self._reads: dict[str, list[asyncio.Future[int]]] = {}
        self._reader: asyncio.Task[None] | None = None  # reading while it runs
        self._stale_said: float | None = None  # when the last WARNING about stale reads was logged
        self._stale_since = 0  # stale reads since then

    def key(self, user_id: str) -> str:
        return f"{self.prefix}rw:{user_id}"

    def advanced(self, view: str, position: int) -> None:
        """Called in-process by a projector; wakes waiting queries at once."""
        if position > self.known.get(view, 0):
            self.known[view] = position
            self._changed.set()

    async def record(self, user_ids: Iterable[str | None], position: int | None) -> None:
        """Remember ``position`` as the users' last write; returns once Redis holds it."""
        users = {u for u in user_ids if u}
        if not position or not users:
            return
        for uid in users:
            if position > self._pending.get(uid, 0):
                self._pending[uid] = position
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        await waiter

    async def _flush(self) -> None:
        """Write what queued up, again and again, until nothing is left (group commit)."""
        while self._waiters:
            pending, self._pending = self._pending, {}
            waiters, self._waiters = self._waiters, []
            try:
                await self._max(keys=[self.key(u) for u in pending],
                                args=[*pending.values(), KEEP])
            except BaseException as exc:  # every waiting command gets the failure, none hangs
                _fail([*waiters, *self._waiters] if _fatal(exc) else waiters, exc)
                if _fatal(exc):
                    self._waiters = []
                    raise
                continue
            for w in waiters:
                if not w.done():
                    w.set_result(None)

    async def target(self, user_id: str | None, explicit: int = 0) -> int:
        """The position a query of ``user_id`` must see: its last recorded write, or more.

        The read is queued and sent with those of concurrent queries in one MGET, always one
        sent after this call began, so a write recorded before the query is seen."""
        if not user_id:
            return explicit
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reads.setdefault(self.key(user_id), []).append(waiter)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read())
        return max(await waiter, explicit)

    async def _read(self) -> None:
        """Read what queued up, again and again, until nothing is left."""
        while self._reads:
            reads, self._reads = self._reads, {}
            try:
                values = [int(v or 0) for v in await self.redis.mget(list(reads))]
                if len(values) != len(reads):
                    raise RuntimeError(f"MGET of {len(reads)} keys gave {len(values)} values")
            except BaseException as exc:  # every waiting query gets the failure, none hangs
                queued = [*reads.values(), *self._reads.values()] if _fatal(exc) else reads.values()
                _fail([w for ws in queued for w in ws], exc)
                if _fatal(exc):
                    self._reads = {}
                    raise
                continue
            for waiters, value in zip(reads.values(), values, strict=True):
                for w in waiters:
                    if not w.done():
                        w.set_result(value)

    async def _refresh(self, views: list[str]) -> None:
        sql = [v for v in views if v not in self.redis_views]
        if sql:
            async with self.pool.connection() as conn:
                rows = await (await conn.execute(
                    "select view, position from view_positions where view = any(%s)", (sql,))).fetchall()
            for view, pos in rows:
                self.advanced(view, int(pos))
        redis = [v for v in views if v in self.redis_views]
        if redis:
            got = await self.redis.mget([self.redis_views[v] for v in redis])
            for view, pos in zip(redis, got, strict=True):
                self.advanced(view, int(pos or 0))

    async def lowest(self, views: Iterable[str]) -> int:
        """The least position of ``views``, read now (admission control's measure)."""
        views = list(views)
        await self._refresh(views)
        return min((self.known.get(v, 0) for v in views), default=0)

    def behind(self, views: Iterable[str], target: int) -> dict[str, int]:
        """The views (of ``views``) known to be below ``target``, with their positions."""
        return {v: self.known.get(v, 0) for v in views if self.known.get(v, 0) < target}

    async def wait(self, views: Iterable[str], target: int) -> bool:
        """True once every view has reached ``target``; False when the bound ran out (the
        read is then stale: counted per view in ``smq_stale_reads_total``, and said in the
        log once, then at most every ``SAY_EVERY`` seconds with the count)."""
        views = list(views)
        if target <= 0:
            return True
        deadline = time.monotonic() + self.bound
        while True:
            if all(self.known.get(v, 0) >= target for v in views):
                return True
            await self._refresh(views)
            if all(self.known.get(v, 0) >= target for v in views):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                self._stale(self.behind(views, target), target)
                return False
            self._changed.clear()
            # ``asyncio.timeout``, not ``wait_for``: in 3.11 a cancellation arriving as the short
            # bound ends could be swallowed, and a worker stopped while waiting here never ended.
            try:
                async with asyncio.timeout(min(left, 0.01)):
                    await self._changed.wait()
            except TimeoutError:
                pass

    def _stale(self, behind: dict[str, int], target: int) -> None:
        for view in behind:
            metrics.stale_read(view)
        self._stale_since += 1
        now = time.monotonic()
        if self._stale_said is None or now - self._stale_said >= SAY_EVERY:
            log.warning("stale read: views %s had not reached position %d within %.1fs (%d stale"
                        " reads since the last such line; smq_stale_reads_total counts them)",
                        ", ".join(f"{v} at {p}" for v, p in behind.items()), target, self.bound,
                        self._stale_since)
            self._stale_said, self._stale_since = now, 0
