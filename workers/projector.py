"""The projector: one durable JetStream consumer per view, applying batches in order.

A view's own storage holds its position (and the stream sequence it came from) in
the same transaction as its rows, so on every start the consumer is anchored
just after that position: nothing is skipped, and a redelivered event is ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from projections.envelope import Envelope, decode

log = logging.getLogger("smq.projector")


class View(Protocol):
    name: str

    async def position(self) -> tuple[int, int]: ...

    async def apply(self, batch: Sequence[tuple[int, Envelope]]) -> int: ...


class ViewRunner:
    """Feeds one view from its durable consumer until stopped."""

    def __init__(self, view: View, js: JetStreamContext, stream: str, root: str,
                 advanced: Callable[[str, int], None] | None = None, batch: int = 256) -> None:
        self.view, self.js, self.stream, self.root = view, js, stream, root
        self.advanced, self.batch = advanced, batch
        self.durable = f"view_{view.name}"
        self.position = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def _subscribe(self) -> object:
        self.position, seq = await self.view.position()
        if self.advanced:
            self.advanced(self.view.name, self.position)
        try:
            await self.js.delete_consumer(self.stream, self.durable)
        except NotFoundError:
            pass
        config = ConsumerConfig(
            durable_name=self.durable, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=seq + 1, ack_policy=AckPolicy.ALL, ack_wait=30, max_ack_pending=10_000,
            filter_subject=f"{self.root}.>",
        )
        return await self.js.pull_subscribe(f"{self.root}.>", durable=self.durable, stream=self.stream,
                                            config=config)

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                sub = await self._subscribe()
                try:
                    await self._consume(sub)
                finally:
                    await self._unsubscribe(sub)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("view %s: failed; resubscribing from its stored position", self.view.name)
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
            self.position = max(self.position, await self.view.apply(batch))
            await msgs[-1].ack()
            if self.advanced:
                self.advanced(self.view.name, self.position)


class Projector:
    """Runs a ViewRunner per view."""

    def __init__(self, runners: list[ViewRunner]) -> None:
        self.runners = runners

    async def run(self) -> None:
        await asyncio.gather(*(r.run() for r in self.runners))

    def stop(self) -> None:
        for r in self.runners:
            r.stop()
