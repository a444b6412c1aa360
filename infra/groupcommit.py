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
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from eventsourcing.persistence import IntegrityError

from infra import metrics

Save = Callable[..., list[Any]]


class _Entry:
    """A command waiting in the queue: its events, its result, and the baton of leadership."""

    __slots__ = ("events", "result", "baton")

    def __init__(self, events: Sequence[Any]) -> None:
        self.events = events
        self.result: Future[list[Any]] = Future()
        self.baton: Future[bool] = Future()


class GroupCommitter:
    """Batches concurrent ``save(events)`` calls from many threads into few transactions.

    A leader commits what is queued; once its own command is done it hands the lead to the
    oldest waiting command and returns, so no command waits longer than a couple of
    transactions, however long the load lasts.
    """

    def __init__(self, save: Save, max_batch: int = 500) -> None:
        self._save, self.max_batch = save, max_batch
        self._lock = threading.Lock()
        self._queue: list[_Entry] = []
        self._leading = False
        self.batches = 0      # transactions made, for the benchmark and metrics
        self.commands = 0     # commands they carried

    def __call__(self, *events: Any) -> list[Any]:
        """Save ``events`` atomically (possibly with others'); their recordings, or the error."""
        entry = _Entry(events)
        with self._lock:
            self._queue.append(entry)
            lead = not self._leading
            if lead:
                self._leading = True
        if not lead:
            either: list[Future[Any]] = [entry.result, entry.baton]
            wait(either, return_when=FIRST_COMPLETED)
            lead = not entry.result.done()
        if lead:
            self._lead(entry)
        recordings = entry.result.result()
        positions = [i for r in recordings
                     if isinstance(i := getattr(getattr(r, "notification", None), "id", None), int)]
        if positions:
            metrics.store_position(max(positions))
        return recordings

    def _lead(self, own: _Entry) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
                if not batch:
                    self._leading = False
                    return
            started = time.perf_counter()
            self._commit(batch)
            metrics.store_transaction(len(batch), time.perf_counter() - started)
            if own.result.done():
                with self._lock:
                    if not self._queue:
                        self._leading = False
                        return
                    # The oldest waiting command leads on (the lead stays taken meanwhile).
                    self._queue[0].baton.set_result(True)
                return

    def _commit(self, batch: list[_Entry]) -> None:
        self.batches += 1
        self.commands += len(batch)
        if len(batch) > 1:
            try:
                recordings = self._save(*[e for entry in batch for e in entry.events])
            except IntegrityError:
                pass  # someone in the batch clashed: find out who, one by one
            except BaseException as exc:  # noqa: BLE001 - every waiter gets the failure
                for entry in batch:
                    entry.result.set_exception(exc)
                return
            else:
                self._resolve(batch, recordings)
                return
        for entry in batch:
            try:
                entry.result.set_result(self._save(*entry.events))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting command
                entry.result.set_exception(exc)

    @staticmethod
    def _resolve(batch: list[_Entry], recordings: list[Any]) -> None:
        by_event = {id(r.domain_event): r for r in recordings}
        for entry in batch:
            entry.result.set_result([by_event[id(e)] for e in entry.events if id(e) in by_event])
