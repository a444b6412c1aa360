"""Redis views that notice when Redis lost what they wrote, and rebuild themselves.

Redis may lose its data (a restart without persistence, a FLUSHDB, a failover to a replica
that is behind) while PostgreSQL and the stream keep theirs. So each Redis view has a marker,
``{prefix}epoch:{view}`` (a random id), also recorded in PostgreSQL (``redis_views``) with a
position and stream sequence the view has reached (moved every few seconds). The view is
intact while Redis holds that marker and is not behind that position, nor behind what this
process saw it reach. The guard checks it in the watch of every batch the projector applies
(nothing is applied to a Redis that lost the view) and every second while idle (a loss with
no write after it is noticed too).

A lost view is rebuilt at once, in the running service: its marker becomes
``rebuilding:<token>`` (readers answer from the SQL views from then on), its keys are dropped,
and it is rebuilt from the event store (not the stream, which may have a retention limit)
batch by batch up to the store's head, ``{prefix}rebuild:{view}`` telling how far (/health
shows it). The projector's batches meanwhile are not applied to the view but remembered: the
rebuild goes at least as far as the last of them before it hands over, so none is lost and
none lands on a half-built view. Then a new marker is recorded in SQL and swapped into Redis,
and the projector's batches apply again (the view skips what it has). A loss during the
rebuild starts it over. One process holds a Redis view, as one projector group does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any

from psycopg_pool import AsyncConnectionPool

from infra.store import Store
from projections.envelope import Envelope
from projections.redisview import REBUILDING, RedisLost, RedisView, as_bytes
from workers.redisrebuild import Rebuilder, ViewState

log = logging.getLogger("smq.redisguard")
CHECK_EVERY = 1.0   # seconds between two checks of an idle view
RECORD_EVERY = 2.0  # seconds between two records of a view's position in SQL
RESET_BOUND = 10.0  # seconds a start waits for a lost view's keys to be dropped

class Guarded:
    """A Redis view as the projector's runner sees it: its batches go through the guard."""

    def __init__(self, guard: RedisGuard, state: ViewState) -> None:
        self.guard, self.state, self.name = guard, state, state.view.name
        self.reads_sealed = state.view.reads_sealed

    async def position(self) -> tuple[int, int]:
        await self.guard.start()
        return await self.state.view.position()

    async def apply(self, batch: Sequence[tuple[int, Envelope]]) -> int:
        return await self.guard.apply(self.state, batch)


class RedisGuard(Rebuilder):
    """Watches the Redis views of one projector and rebuilds any that Redis lost."""

    def __init__(self, views: Sequence[RedisView], store: Store, pool: AsyncConnectionPool,
                 every: float = CHECK_EVERY) -> None:
        self.states = {v.name: ViewState(v) for v in views}
        self.store, self.pool, self.every = store, pool, every
        self._started = False
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()

    def wrap(self, views: Sequence[Any]) -> list[Any]:
        """``views`` with the guarded ones in the guard's hands."""
        return [Guarded(self, self.states[v.name]) if v.name in self.states else v for v in views]

    def stop(self) -> None:
        self._stop.set()

    def rebuilding(self) -> list[str]:
        return [name for name, st in self.states.items() if st.rebuild is not None]

    # -- start ---------------------------------------------------------------------------
    async def start(self, wait: float = 0.0) -> None:
        """Check every view against its record (once); a lost one starts rebuilding, and
        this returns once its keys are dropped, or once it is rebuilt if within ``wait``."""
        if not self._started:
            async with self._lock:
                if not self._started:
                    head = await self.store.max_position()
                    for st in self.states.values():
                        await self._open(st, head)
                    self._started = True
        tasks = [st.rebuild for st in self.states.values() if st.rebuild is not None]
        if tasks and wait > 0:
            await asyncio.wait([asyncio.shield(t) for t in tasks], timeout=wait)

    async def _open(self, st: ViewState, head: int) -> None:
        v = st.view
        async with self.pool.connection() as conn:
            row = await (await conn.execute(
                "select epoch, position, stream_seq from redis_views where view=%s", (v.name,))).fetchone()
        marker, pos, seq = await v.redis.mget(v.epoch_key, v.pos_key, v.seq_key)
        marker = as_bytes(marker)
        done = int(pos or 0)
        if row is not None:
            st.durable = (int(row[1]), int(row[2]))
            st.floor = st.durable[0]
            if marker is not None and marker == row[0].encode() and done >= st.floor:
                st.accepted = {marker}
                return
            why = _why(marker, done, st.floor)
        elif marker is None and (pos is not None or head == 0):
            # Written by a version without markers, or nothing to hold yet: taken as it is.
            await self._stamp(st, done, int(seq or 0))
            return
        elif marker is not None:
            why = "Redis holds a marker PostgreSQL has no record of"
        else:  # a first start (nothing to lose), or Redis lost the view before markers were kept
            log.info("building the Redis view %s from the event store", v.name)
            why = ""
        self._lost(st, why)
        with contextlib.suppress(TimeoutError):  # the runner anchors after the recorded sequence
            await asyncio.wait_for(asyncio.shield(st.reset.wait()), RESET_BOUND)

    async def _stamp(self, st: ViewState, done: int, seq: int) -> None:
        epoch = secrets.token_hex(8)
        await self._record(st.view.name, epoch, done, seq)
        await st.view.redis.set(st.view.epoch_key, epoch)
        st.accepted, st.floor, st.durable = {epoch.encode()}, done, (done, seq)

    # -- the projector's batches ---------------------------------------------------------
    @staticmethod
    def _intact(st: ViewState, marker: bytes | None, done: int, floor: int | None = None) -> bool:
        return marker in st.accepted and done >= (st.floor if floor is None else floor)

    async def apply(self, st: ViewState, batch: Sequence[tuple[int, Envelope]]) -> int:
        await self.start()
        if st.rebuild is None:
            floor = st.floor
            try:
                reached = await st.view.apply(batch, check=lambda m, d: self._intact(st, m, d))
            except RedisLost as exc:
                self._lost(st, _why(exc.marker, exc.position, floor))
            else:
                st.floor = max(st.floor, reached)
                return reached
        # Being rebuilt: not applied; the rebuild goes at least this far before it hands over.
        st.must_reach = max([st.must_reach, *(env.position for _seq, env in batch)])
        return st.progress

    # -- watching ------------------------------------------------------------------------
    async def run(self) -> None:
        """Check the views every ``every`` seconds until stopped; record their positions."""
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    await self.start()
                    for st in self.states.values():
                        await self._check(st)
                    failures = 0
                except Exception as exc:  # noqa: BLE001 - Redis or PostgreSQL away: said, retried
                    failures += 1
                    if failures == 1 or failures % 30 == 0:
                        log.error("checking the Redis views failed (%d in a row): %s: %s",
                                  failures, type(exc).__name__, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.every)
        finally:
            for st in self.states.values():
                if st.rebuild is not None:
                    st.rebuild.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await st.rebuild

    async def _check(self, st: ViewState) -> None:
        if st.rebuild is not None:
            return
        v, floor, accepted = st.view, st.floor, set(st.accepted)
        marker, pos, seq = await v.redis.mget(v.epoch_key, v.pos_key, v.seq_key)
        marker = as_bytes(marker)
        done = int(pos or 0)
        if st.rebuild is not None:
            return
        if marker is None or not (marker in accepted and done >= floor):
            self._lost(st, _why(marker, done, floor))
        elif done > st.durable[0] and time.monotonic() - st.recorded_at >= RECORD_EVERY:
            async with self.pool.connection() as conn:
                await conn.execute(
                    "update redis_views set position = %s, stream_seq = %s"
                    " where view = %s and epoch = %s and position < %s",
                    (done, int(seq or 0), v.name, marker.decode(), done))
            st.durable, st.recorded_at = (done, int(seq or 0)), time.monotonic()

def _why(marker: bytes | None, done: int, floor: int) -> str:
    if marker is None:
        return f"its marker is missing; position {done}, {floor} was reached"
    if marker.startswith(REBUILDING):
        return "a rebuild was cut short"
    if done < floor:
        return f"position {done}, behind {floor} which was reached"
    return "its marker is not the one recorded"
