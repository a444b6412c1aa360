"""Group commit: the events of concurrent commands saved in one store transaction.

The eventsourcing PostgreSQL recorder takes a table lock for every insert, to keep the
notification order gap-free, so single saves queue behind each other (a few hundred a
second). Here the first command to arrive becomes the leader and saves, in one
transaction, everything that queued up while the previous transaction ran; the others
wait for their result. A batch the store refuses (one command's version clash or taken
unique value) is saved again one command at a time, so only the clashing command fails.
Nothing is acknowledged before its transaction commits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from eventsourcing.persistence import IntegrityError

from infra import metrics

Save = Callable[..., list[Any]]


class GroupCommitter:
    """Batches concurrent ``save(events)`` calls from many threads into few transactions."""

    def __init__(self, save: Save, max_batch: int = 500) -> None:
        self._save, self.max_batch = save, max_batch
        self._lock = threading.Lock()
        self._queue: list[tuple[Sequence[Any], Future[list[Any]]]] = []
        self._leading = False
        self.batches = 0      # transactions made, for the benchmark and metrics
        self.commands = 0     # commands they carried

    def __call__(self, *events: Any) -> list[Any]:
        """Save ``events`` atomically (possibly with others'); their recordings, or the error."""
        future: Future[list[Any]] = Future()
        with self._lock:
            self._queue.append((events, future))
            lead = not self._leading
            if lead:
                self._leading = True
        if lead:
            self._lead()
        recordings = future.result()
        positions = [i for r in recordings
                     if isinstance(i := getattr(getattr(r, "notification", None), "id", None), int)]
        if positions:
            metrics.store_position(max(positions))
        return recordings

    def _lead(self) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
                if not batch:
                    self._leading = False
                    return
            started = time.perf_counter()
            self._commit(batch)
            metrics.store_transaction(len(batch), time.perf_counter() - started)

    def _commit(self, batch: list[tuple[Sequence[Any], Future[list[Any]]]]) -> None:
        self.batches += 1
        self.commands += len(batch)
        if len(batch) > 1:
            try:
                recordings = self._save(*[e for events, _ in batch for e in events])
            except IntegrityError:
                pass  # someone in the batch clashed: find out who, one by one
            except BaseException as exc:  # noqa: BLE001 - every waiter gets the failure
                for _, future in batch:
                    future.set_exception(exc)
                return
            else:
                self._resolve(batch, recordings)
                return
        for events, future in batch:
            try:
                future.set_result(self._save(*events))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting command
                future.set_exception(exc)

    @staticmethod
    def _resolve(batch: list[tuple[Sequence[Any], Future[list[Any]]]], recordings: list[Any]) -> None:
        by_event = {id(r.domain_event): r for r in recordings}
        for events, future in batch:
            future.set_result([by_event[id(e)] for e in events if id(e) in by_event])
