"""A lost Redis view rebuilt from the event store under a marker of its own, then handed back to the projector."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from psycopg_pool import AsyncConnectionPool

from infra import metrics
from infra.store import Store
from projections.envelope import Envelope
from projections.redisview import REBUILDING, RedisLost, RedisView
from workers.feed import feed

log = logging.getLogger("smq.redisguard")
STEP = 0.5          # seconds of rebuilding between two reports of its progress

# The rebuild's marker swapped for the final one, only if Redis still holds it.
_SWAP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""


@dataclass
class ViewState:
    """What the guard knows of one Redis view: its accepted markers, floor, record and rebuild."""

    view: RedisView
    accepted: set[bytes] = field(default_factory=set)  # markers under which batches apply
    floor: int = 0                       # Redis behind this lost the view: it was reached
    durable: tuple[int, int] = (0, 0)    # position and stream sequence recorded in SQL
    recorded_at: float = 0.0
    rebuild: asyncio.Task[None] | None = None  # set from the loss until the hand-over
    reset: asyncio.Event = field(default_factory=asyncio.Event)  # the rebuild dropped the keys
    must_reach: int = 0                  # the last position of a batch not applied meanwhile
    progress: int = 0                    # how far the rebuild is


class _Writer:
    """The view as the rebuild writes it: only under its own marker, with the stream sequence
    the view had recorded (the store's positions are no stream sequences)."""

    def __init__(self, view: RedisView, token: bytes, seq: int) -> None:
        self.view, self.name, self.token, self.seq = view, view.name, token, seq
        self.reached = 0

    async def apply(self, batch: Sequence[tuple[int, Envelope]]) -> int:
        self.reached = await self.view.apply([(self.seq, env) for _, env in batch],
                                             check=lambda marker, _done: marker == self.token)
        return self.reached


class Rebuilder:
    """The rebuilding half of the guard: a lost view rebuilt, its marker recorded and swapped in."""

    store: Store
    pool: AsyncConnectionPool
    _stop: asyncio.Event

    async def _record(self, view: str, epoch: str, position: int, seq: int) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "insert into redis_views (view, epoch, position, stream_seq) values (%s, %s, %s, %s)"
                " on conflict (view) do update set epoch = excluded.epoch, position = excluded.position,"
                " stream_seq = excluded.stream_seq", (view, epoch, position, seq))

    def _lost(self, st: ViewState, why: str) -> None:
        if st.rebuild is not None:
            return
        if why:
            log.warning("Redis lost the view %s (%s): rebuilding it from the event store; message"
                        " authorization answers from PostgreSQL meanwhile", st.view.name, why)
        st.accepted, st.progress = set(), 0
        st.reset.clear()
        st.rebuild = asyncio.create_task(self._rebuild(st, bool(why)), name=f"rebuild-{st.view.name}")

    async def _rebuild(self, st: ViewState, lost: bool) -> None:
        name, started, failures = st.view.name, time.monotonic(), 0
        metrics.REDIS_VIEW_REBUILDS.labels(name).inc()
        metrics.REDIS_VIEW_REBUILDING.labels(name).set(1)
        try:
            while not self._stop.is_set():
                try:
                    if await self._rebuild_once(st):
                        log.log(logging.WARNING if lost else logging.INFO,
                                "Redis view %s rebuilt from the event store up to position %d in %.1fs",
                                name, st.progress, time.monotonic() - started)
                        return
                    log.warning("Redis lost the view %s again while it was rebuilt; starting over", name)
                except Exception as exc:  # noqa: BLE001 - Redis or PostgreSQL away: said, retried
                    failures += 1
                    if failures == 1 or failures % 10 == 0:
                        log.error("rebuilding the Redis view %s failed (%d in a row): %s: %s",
                                  name, failures, type(exc).__name__, exc)
                    await asyncio.sleep(min(5.0, 0.1 * 2 ** failures))
        finally:
            metrics.REDIS_VIEW_REBUILDING.labels(name).set(0)

    async def _rebuild_once(self, st: ViewState) -> bool:
        """One rebuild: True once handed over, False when Redis lost the view meanwhile."""
        v, seq = st.view, st.durable[1]
        token = REBUILDING + secrets.token_hex(8).encode()
        await v.redis.set(v.epoch_key, token)  # readers go to SQL; a batch in flight fails its watch
        await v.reset()
        st.progress = 0
        await v.redis.mset({v.epoch_key: token, v.seq_key: seq,
                            v.rebuild_key: f"0 {await self.store.max_position()}"})
        st.reset.set()
        writer = _Writer(v, token, seq)
        try:
            while True:
                target = max(await self.store.max_position(), st.must_reach)
                if st.progress >= target:
                    break
                await feed(self.store, [writer], st.progress, target, until=time.monotonic() + STEP)
                st.progress = max(st.progress, writer.reached)
                await v.redis.set(v.rebuild_key, f"{st.progress} {target}")
        except RedisLost:
            return False
        # Whole up to ``progress`` (nothing awaited since the last look at ``must_reach``):
        # the projector's batches apply again, under this marker and then the final one.
        epoch = secrets.token_hex(8)
        st.accepted, st.floor, st.rebuild = {token, epoch.encode()}, st.progress, None
        try:
            await self._record(v.name, epoch, st.progress, seq)
            swapped = await v.redis.eval(_SWAP, 2, v.epoch_key, v.rebuild_key, token, epoch)
        except BaseException:
            # Not handed over after all: this task goes on (it retries), and no second one
            # may start beside it while the projector sees the view as lost meanwhile.
            st.rebuild = asyncio.current_task()
            raise
        st.accepted, st.durable = {epoch.encode()}, (st.progress, seq)
        if not swapped:  # lost again at the last moment: the next check starts over
            log.warning("Redis lost the view %s again as its rebuild ended", v.name)
        return True
