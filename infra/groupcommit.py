"""Group commit: the events of concurrent commands saved in one store transaction.

The eventsourcing PostgreSQL recorder takes a table lock for every insert, to keep the
notification order gap-free, so single saves queue behind each other (a few hundred a
second). Here a command's events wait in a queue; one thread of the committer's own saves,
in one transaction, everything that queued up while its previous transaction ran, and wakes
each command with its result. A batch the store refuses (one command's version clash or
taken unique value) is saved again one command at a time, so only the clashing command fails.
Nothing is acknowledged before its transaction commits.

A command that finds no transaction under way saves its own events at once, in its own
thread (no thread is woken for it). Commands that come meanwhile queue up; when that
transaction ends, the committer's own thread (started then, ended by ``close``) saves the
queue, batch after batch, until it is empty: under load it starts the next transaction as
soon as one ends, where a command leading in turn had first to be woken (a few milliseconds
on a busy process, with no transaction running meanwhile). Every command waits for its own
batch only, behind at most the transaction under way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError

from infra import metrics

Save = Callable[..., list[Any]]


class _Entry:
    """A command waiting in the queue: its events, then its recordings or its failure."""

    __slots__ = ("events", "recordings", "failure", "settled", "done")

    def __init__(self, events: Sequence[Any]) -> None:
        self.events = events
        self.recordings: list[Any] = []
        self.failure: BaseException | None = None
        self.settled = threading.Lock()  # held until the entry is settled
        self.settled.acquire()
        self.done = False

    def settle(self, recordings: list[Any] | None = None, failure: BaseException | None = None) -> None:
        if failure is not None:
            self.failure = failure
        elif recordings is not None:
            self.recordings = recordings
        self.done = True
        self.settled.release()


class GroupCommitter:
    """Batches concurrent ``save(events)`` calls from many threads into few transactions, at
    most ``max_batch`` commands a transaction, oldest first."""

    def __init__(self, save: Save, max_batch: int = 500) -> None:
        self._save, self.max_batch = save, max_batch
        self._lock = threading.Lock()
        self._queue: list[_Entry] = []
        self._busy = False  # a transaction is under way (a caller's or the thread's)
        self._thread: threading.Thread | None = None
        self._idle = False  # the committer's thread waits for ``_wake``
        self._wake = threading.Lock()  # released to wake the idle thread
        self._wake.acquire()
        self._closed = False
        self.batches = 0      # transactions made, for the benchmark and metrics
        self.commands = 0     # commands they carried

    def __call__(self, *events: Any) -> list[Any]:
        """Save ``events`` atomically (possibly with others'); their recordings, or the error."""
        entry = _Entry(events)
        with self._lock:
            if self._closed:
                raise RuntimeError("the group committer is closed")
            lead = not self._busy
            if lead:
                self._busy = True
            else:
                self._queue.append(entry)
        if lead:
            self._round([entry])
            self._hand_over()
        entry.settled.acquire()
        if entry.failure is not None:
            raise entry.failure
        return entry.recordings

    def close(self) -> None:
        """Save what is queued, then end the committer's thread (no save is taken after)."""
        with self._lock:
            self._closed = True
            thread = self._thread
            if self._idle:
                self._idle = False
                self._wake.release()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _hand_over(self) -> None:
        """After a caller's transaction: the queue to the committer's thread, or no longer busy."""
        with self._lock:
            if not self._queue:
                self._busy = False
                return
            if self._closed:  # no thread to take it: the caller saves the rest itself
                drain = True
            elif self._thread is None:
                drain = False
                self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
                self._thread.start()
            else:
                drain = False
                if self._idle:
                    self._idle = False
                    self._wake.release()
        if drain:
            self._run(stay=False)

    def _run(self, stay: bool = True) -> None:
        """Save the queue batch after batch until it is empty, then wait to be handed it again
        (``stay``; or end, once closed)."""
        while True:
            with self._lock:
                batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
                if not batch:
                    self._busy = False
                    if self._closed or not stay:
                        return
                    self._idle = True
            if batch:
                self._round(batch)
            else:
                self._wake.acquire()

    def _round(self, batch: list[_Entry]) -> None:
        started = time.perf_counter()
        try:
            self._commit(batch)
            metrics.store_transaction(len(batch), time.perf_counter() - started)
        except BaseException as exc:  # noqa: BLE001 - no command is left waiting, the thread goes on
            for entry in batch:
                if not entry.done:
                    entry.settle(failure=exc)

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
                    entry.settle(failure=exc)
                return
            else:
                self._resolve(batch, recordings)
                return
        for entry in batch:
            try:
                own = self._save(*entry.events)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting command
                entry.settle(failure=exc)
            else:
                _seen(own)
                entry.settle(own)

    @staticmethod
    def _resolve(batch: list[_Entry], recordings: list[Any]) -> None:
        _seen(recordings)
        by_event = {id(r.domain_event): r for r in recordings}
        for entry in batch:
            entry.settle([by_event[id(e)] for e in entry.events if id(e) in by_event])


def _seen(recordings: list[Any]) -> None:
    """The store's position gauge (``smq_store_position``) moved to the last of a commit."""
    positions = [i for r in recordings
                 if isinstance(i := getattr(getattr(r, "notification", None), "id", None), int)]
    if positions:
        metrics.store_position(max(positions))
