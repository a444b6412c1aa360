"""The projector: durable JetStream consumers that feed the views, applying batches in order.

One consumer feeds a group of views (by default all of them): each message is fetched and
decoded once and the batch goes to every view of the group at the same time. A view's own
storage holds its position (and the stream sequence it came from) in the same transaction as
its rows, so the consumer is anchored just after the least advanced view of its group:
nothing is skipped, and a view that is further on ignores what it has already applied.

Groups are how several projector processes share the work: give each its own views
(`SMQ_PROJECTOR_VIEWS`); each group has its own durable consumer, named after its views.

A view that fails on an event is pinpointed (each view of the batch alone, then the failing
one event by event), logged once at ERROR (view, position, event type, cause), recorded in
``view_status`` for /health of every process, and retried with a growing pause (with an
ERROR reminder now and then) until it applies again, which clears the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from psycopg_pool import AsyncConnectionPool

from infra import metrics, viewstatus
from infra.viewstatus import Failure, Stalls, ViewsFailed, cause_of
from projections.envelope import Envelope, decode, sealed_read_by
from projections.sealing import Sealer
from projections.sqlview import apply_batch
from workers.projector_fetch import quick, stream_sequence

log = logging.getLogger("smq.projector")

RETRY_FIRST = 0.5  # the pause after a failure, doubled at each repeat of it up to RETRY_MAX
RETRY_MAX = 30.0
BUS_RETRY_MAX = 1.0  # the pause's bound when the bus, not a view, fails
REMIND_EVERY = 300.0  # seconds between the ERROR reminders of a failure that goes on
WATCH_EVERY = 1.0  # how often the store's head is read (the lags and stalls follow it)


class View(Protocol):
    name: str

    async def position(self) -> tuple[int, int]: ...

    async def apply(self, batch: Sequence[tuple[int, Envelope]]) -> int: ...


def durable_name(views: Sequence[View]) -> str:
    names = sorted(v.name for v in views)
    if len(names) == 1:
        return f"view_{names[0]}"
    return "views_" + hashlib.sha256(",".join(names).encode()).hexdigest()[:12]


class ViewRunner:
    """Feeds a group of views from one durable consumer until stopped."""

    def __init__(self, views: View | Sequence[View], js: JetStreamContext, stream: str, root: str,
                 advanced: Callable[[str, int], None] | None = None, batch: int = 512,
                 pool: AsyncConnectionPool | None = None, sealer: Sealer | None = None,
                 guard: Callable[[asyncio.Event], Awaitable[object | None]] | None = None) -> None:
        self.views = list(views) if isinstance(views, Sequence) else [views]
        # Waits (loudly) until the stream is this store's (infra.streamowner); None: stopped.
        self.guard = guard
        self.js, self.stream, self.root = js, stream, root
        self.sealer = sealer  # opens the sealed credentials the views hold or hash (only those)
        self.opened = sealed_read_by(self.views)
        self.advanced, self.batch = advanced, batch
        self.durable = durable_name(self.views)
        self.positions: dict[str, int] = {}
        self._stop = asyncio.Event()
        # Failures are recorded in ``view_status`` through ``pool`` (for /health).
        self.pool = pool
        self.failing: dict[str, Failure] = {}
        self._failure: tuple[tuple[str, int | None, str], ...] | None = None
        self._delay = 0.0
        self._retries = 0
        self._since = self._reminded = 0.0
        self._recorded = True  # an earlier run may have left records: the first success clears them

    @property
    def position(self) -> int:
        """How far every view of the group has got."""
        return min(self.positions.values(), default=0)

    def stop(self) -> None:
        self._stop.set()

    def _moved(self, view: str, position: int) -> None:
        if position > self.positions.get(view, 0):
            self.positions[view] = position
        metrics.view_position(view, self.positions.get(view, 0))
        if self.advanced:
            self.advanced(view, self.positions.get(view, 0))

    async def _subscribe(self) -> object:
        stored = await asyncio.gather(*(v.position() for v in self.views))
        for view, (pos, _seq) in zip(self.views, stored, strict=True):
            self.positions[view.name] = pos
            self._moved(view.name, pos)
        start = min(seq for _pos, seq in stored) + 1
        try:
            await self.js.delete_consumer(self.stream, self.durable)
        except NotFoundError:
            pass
        config = ConsumerConfig(
            durable_name=self.durable, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start, ack_policy=AckPolicy.ALL, ack_wait=30, max_ack_pending=20_000,
            filter_subject=f"{self.root}.>",
        )
        return quick(await self.js.pull_subscribe(f"{self.root}.>", durable=self.durable,
                                                  stream=self.stream, config=config))

    async def run(self) -> None:
        while not self._stop.is_set():
            if self.guard is not None and await self.guard(self._stop) is None:
                return
            try:
                sub = await self._subscribe()
                try:
                    await self._consume(sub)
                finally:
                    await self._unsubscribe(sub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - said, recorded, retried from the stored positions
                await self._failed(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self._delay)

    async def _failed(self, exc: Exception) -> None:
        """Say (once, then now and then), count and record a failure; set the next pause."""
        failures = (exc.failures if isinstance(exc, ViewsFailed)
                    else [Failure(v.name, None, None, cause_of(exc)) for v in self.views])
        key = tuple((f.view, f.position, f.error) for f in failures)
        now = time.monotonic()
        self._retries += 1
        if self._failure is None:
            self._since, self._retries = now, 1
        # The pause starts short again only when the views got further (a failure on a later
        # event); a cause whose text changes at each try (a server away) keeps it growing.
        moved = self._failure is None or [k[:2] for k in key] != [k[:2] for k in self._failure]
        self._delay = RETRY_FIRST if moved else min(self._delay * 2, RETRY_MAX)
        if not isinstance(exc, ViewsFailed):
            # Not a view's own failure but the bus's (a cluster electing a stream leader, a
            # restarting server): it is back within seconds, and reads wait for the views.
            self._delay = min(self._delay, BUS_RETRY_MAX)
        if key != self._failure:
            self._failure, self._reminded = key, now
            log.error("projector: %s; retrying in %.1fs, then less and less often",
                      "; ".join(f.describe() for f in failures), self._delay)
        else:
            if now - self._reminded >= REMIND_EVERY:
                self._reminded = now
                log.error("projector: still failing after %d tries in %ds: %s", self._retries,
                          now - self._since, "; ".join(f.describe() for f in failures))
        for f in failures:
            metrics.view_failure(f.view)
            metrics.view_stalled(f.view, True)
        recovered = [v for v in self.failing if v not in {f.view for f in failures}]
        self.failing = {f.view: f for f in failures}
        if self.pool is not None:
            try:
                if recovered:
                    await viewstatus.clear(self.pool, recovered)
                await viewstatus.record(self.pool, failures)
                self._recorded = True
            except Exception as err:  # noqa: BLE001 - the database may be what fails
                log.debug("projector: recording the failure failed: %s", err)

    async def _applied(self) -> None:
        """A batch went through: a failure is over."""
        if self.failing:
            log.warning("projector: views %s apply again (after %d tries in %ds)", sorted(self.failing),
                        self._retries, time.monotonic() - self._since)
            for view in self.failing:
                metrics.view_stalled(view, False)
        self.failing, self._failure, self._delay, self._retries = {}, None, 0.0, 0
        if self._recorded and self.pool is not None:
            try:
                await viewstatus.clear(self.pool, [v.name for v in self.views])
                self._recorded = False
            except Exception as err:  # noqa: BLE001 - tried again after the next batch
                log.debug("projector: clearing the failure records failed: %s", err)

    @staticmethod
    async def _unsubscribe(sub: object) -> None:
        try:
            await sub.unsubscribe()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - the connection may be gone already
            log.debug("unsubscribe failed", exc_info=True)

    async def _consume(self, sub: object) -> None:
        while not self._stop.is_set():
            try:
                msgs = await sub.fetch(self.batch, timeout=0.5)  # type: ignore[attr-defined]
            except (TimeoutError, NatsTimeout):
                continue
            if not msgs:
                continue
            sealer, opened = self.sealer, self.opened
            batch = [(stream_sequence(m), decode(m.data, sealer, opened)) for m in msgs]
            reached = await self._apply(batch)
            await msgs[-1].ack()
            for view, pos in zip(self.views, reached, strict=True):
                self._moved(view.name, pos)
            if self.failing or self._recorded:
                await self._applied()

    async def _apply(self, batch: Sequence[tuple[int, Envelope]]) -> list[int]:
        try:
            return await apply_batch(self.views, batch)
        except Exception as exc:  # noqa: BLE001 - which view, which event? (raises ViewsFailed)
            log.debug("projector: a batch failed (%s); applying it view by view", cause_of(exc))
            return await self._pinpoint(batch)

    async def _pinpoint(self, batch: Sequence[tuple[int, Envelope]]) -> list[int]:
        """Apply the batch to each view alone, and a view that fails event by event: the
        views' new positions, or ViewsFailed naming each failing view and its event."""
        reached, failures = [], []
        for view in self.views:
            try:
                reached.append((await apply_batch([view], batch))[0])
                self._moved(view.name, reached[-1])
                continue
            except Exception:  # noqa: BLE001 - found event by event below
                pass
            pos = self.positions.get(view.name, 0)
            for item in batch:
                try:
                    pos = (await apply_batch([view], [item]))[0]
                except Exception as exc:  # noqa: BLE001 - this is the event
                    env = item[1]
                    failures.append(Failure(view.name, env.position, f"{env.aggregate}.{env.type}",
                                            cause_of(exc)))
                    break
            reached.append(pos)
            self._moved(view.name, pos)
        if failures:
            raise ViewsFailed(failures)
        return reached  # it went through this time


class Projector:
    """Runs the view groups of this process, and measures their lags from the store's head
    (and runs the guard of their Redis views, if any: ``workers.redisguard``)."""

    def __init__(self, runners: list[ViewRunner],
                 head: Callable[[], Awaitable[int]] | None = None, guard: Any = None) -> None:
        self.runners, self.head, self.guard = runners, head, guard
        self.stalls = Stalls(viewstatus.STALL_AFTER)
        self._stop = asyncio.Event()

    async def run(self) -> None:
        watch = [self._watch()] if self.head is not None else []
        guard = [self.guard.run()] if self.guard is not None else []
        await asyncio.gather(*(r.run() for r in self.runners), *watch, *guard)

    async def _watch(self) -> None:
        """Read the store's head now and then: each view's lag, and whether it is stalled."""
        assert self.head is not None
        while not self._stop.is_set():
            try:
                head = await self.head()
            except Exception as exc:  # noqa: BLE001 - /health's store check says it
                log.debug("projector: reading the store's head failed: %s", exc)
            else:
                metrics.store_position(head)
                for r in self.runners:
                    for v in r.views:
                        pos = r.positions.get(v.name, 0)
                        stalled = self.stalls.stalled(v.name, pos, head - pos)
                        metrics.view_stalled(v.name, stalled or v.name in r.failing)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), WATCH_EVERY)

    def stop(self) -> None:
        self._stop.set()
        for r in self.runners:
            r.stop()
        if self.guard is not None:
            self.guard.stop()
