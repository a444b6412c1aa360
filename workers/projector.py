"""The projector: durable JetStream consumers that feed the views, applying batches in order.

One consumer feeds a group of views (by default all of them): each message is fetched and
decoded once and the batch goes to every view of the group at the same time. A view's own
storage holds its position (and the stream sequence it came from) in the same transaction as
its rows, so the consumer is anchored just after the least advanced view of its group:
nothing is skipped, and a view that is further on ignores what it has already applied.

Groups are how several projector processes share the work: give each its own views
(`SMQ_PROJECTOR_VIEWS`); each group has its own durable consumer, named after its views.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from infra import metrics
from projections.envelope import Envelope, decode
from projections.sqlview import apply_batch

log = logging.getLogger("smq.projector")


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
                 guard: Callable[[asyncio.Event], Awaitable[object | None]] | None = None) -> None:
        self.views = list(views) if isinstance(views, Sequence) else [views]
        # Waits (loudly) until the stream is this store's (infra.streamowner); None: stopped.
        self.guard = guard
        self.js, self.stream, self.root = js, stream, root
        self.advanced, self.batch = advanced, batch
        self.durable = durable_name(self.views)
        self.positions: dict[str, int] = {}
        self._stop = asyncio.Event()

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
        return await self.js.pull_subscribe(f"{self.root}.>", durable=self.durable, stream=self.stream,
                                            config=config)

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
            except Exception:
                log.exception("views %s: failed; resubscribing from their stored positions",
                              [v.name for v in self.views])
                await asyncio.sleep(0.5)

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
            batch = [(m.metadata.sequence.stream, decode(m.data)) for m in msgs]
            reached = await self._apply(batch)
            await msgs[-1].ack()
            for view, pos in zip(self.views, reached, strict=True):
                self._moved(view.name, pos)

    async def _apply(self, batch: Sequence[tuple[int, Envelope]]) -> list[int]:
        return await apply_batch(self.views, batch)


class Projector:
    """Runs the view groups of this process."""

    def __init__(self, runners: list[ViewRunner]) -> None:
        self.runners = runners

    async def run(self) -> None:
        await asyncio.gather(*(r.run() for r in self.runners))

    def stop(self) -> None:
        for r in self.runners:
            r.stop()
