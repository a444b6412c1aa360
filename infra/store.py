"""The event store gateway: runs the synchronous eventsourcing Application off the event loop."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from domain.app import Done, Smq
from infra.admission import Admission
from infra.threads import Workers
from projections.envelope import Envelope, from_stored
from projections.sealing import Sealer

T = TypeVar("T")


class Store:
    """Async face of the store; every call runs on one of a few threads (``infra.threads``)."""

    def __init__(self, app: Smq, workers: int = 8, sealer: Sealer | None = None) -> None:
        self.app = app
        self.sealer = sealer  # seals the credentials of what ``read`` returns (the bus format)
        self._pool = Workers(workers, "store")
        self._committed: list[Callable[[int], None]] = []
        self._identity: str | None = None
        # Holds new commands while the views are too far behind (``infra.admission``).
        self.admission: Admission | None = None

    def admit(self, admission: Admission) -> None:
        """Hold commands by ``admission``, and tell it of each commit."""
        self.admission = admission
        self.on_commit(admission.committed)

    def on_commit(self, callback: Callable[[int], None]) -> None:
        """Called (on the loop) with the position of each commit made through this gateway."""
        self._committed.append(callback)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._pool.run(partial(fn, *args, **kwargs))

    async def command(self, fn: Callable[..., Done], *args: Any, **kwargs: Any) -> Done:
        if self.admission is not None:
            await self.admission.admit()
        done = await self.run(fn, *args, **kwargs)
        if done.position is not None:
            for cb in self._committed:
                cb(done.position)
        return done

    def _read(self, after: int, limit: int) -> list[Envelope]:
        recorder, decode, sealer = self.app.recorder, self.app.mapper.transcoder.decode, self.sealer
        if hasattr(recorder, "select_rows"):  # PostgreSQL: plain rows, one query (infra.esstore)
            return [from_stored(position, topic, originator_id, version, decode(state), sealer)
                    for position, originator_id, version, topic, state in recorder.select_rows(after + 1, limit)]
        rows = recorder.select_notifications(after + 1, limit)
        return [from_stored(n.id, n.topic, n.originator_id, n.originator_version, decode(n.state),
                            sealer) for n in rows]

    async def read(self, after: int, limit: int = 500) -> list[Envelope]:
        """Envelopes of the events after ``after``, in global order, as they go on the bus."""
        return await self.run(self._read, after, limit)

    async def max_position(self) -> int:
        return await self.run(lambda: self.app.recorder.max_notification_id() or 0)

    async def identity(self) -> str:
        """The store's identity: kept with its tables (an in-memory store has one per process)."""
        if self._identity is None:
            recorder = self.app.recorder
            identity: str = (await self.run(recorder.store_id) if hasattr(recorder, "store_id")
                             else str(uuid.uuid4()))
            self._identity = identity
            return identity
        return self._identity

    async def event_at(self, position: int) -> tuple[str, int] | None:
        """(aggregate id, version) of the event at ``position``, if the store holds one there."""
        def read() -> tuple[str, int] | None:
            rows = self.app.recorder.select_notifications(position, 1)
            if not rows or rows[0].id != position:
                return None
            return str(rows[0].originator_id), int(rows[0].originator_version)
        return await self.run(read)

    def close(self) -> None:
        if self.admission is not None:
            self.admission.close()
        self._pool.shutdown()
        self.app.close()
