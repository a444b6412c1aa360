"""Threads for the event loop's blocking calls (the store's), cheaper per call than
``loop.run_in_executor``.

``run_in_executor`` makes a ``concurrent.futures.Future`` (a ``threading.Condition`` and its
lock) for every call, chains it to an asyncio future with callbacks both ways, and wakes the
loop (a write to its self-pipe) once per finished call. Here a call is a tuple put on a
``queue.SimpleQueue`` that the threads take from; its result goes to a list that the loop
empties in one callback, woken once for every call that finished while it was not looking.
What a call does is unchanged: it runs on one of ``count`` threads, in the order of the
calls, without the caller's context variables (as ``run_in_executor``); its result or
exception is the awaiting coroutine's; a call cancelled before a thread took it does not run.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# (the loop, the future to settle, the call) of one call; None tells a thread to stop.
_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class Workers:
    """``count`` threads, started at the first call, that run the loop's blocking calls."""

    def __init__(self, count: int, name: str) -> None:
        self.count, self.name = count, name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shut = False
        # Calls finished and not yet handed to their loop (by loop), and whether that loop
        # was already woken for them.
        self._finished: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}

    def run(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """``call()`` on one of the threads; the future of its result, on the running loop."""
        loop = asyncio.get_running_loop()
        if self._shut:
            raise RuntimeError("cannot run new calls after shutdown")
        if len(self._threads) < self.count:
            self._start()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, call))
        return future

    def _start(self) -> None:
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot run new calls after shutdown")
            while len(self._threads) < self.count:
                thread = threading.Thread(target=self._work, name=f"{self.name}_{len(self._threads)}",
                                          daemon=True)
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, call = job
            if future.cancelled():  # cancelled before it started: it does not run
                continue
            try:
                result, ok = call(), True
            except BaseException as exc:  # noqa: BLE001 - the awaiting coroutine's to handle
                result, ok = exc, False
            self._finish(loop, future, ok, result)
            del job, future, call, result  # nothing kept alive while the thread waits

    def _finish(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], ok: bool,
                result: Any) -> None:
        with self._lock:
            finished = self._finished.get(loop)
            wake = finished is None
            if wake:
                finished = self._finished[loop] = []
            finished.append((future, ok, result))  # type: ignore[union-attr]
        if wake:
            try:
                loop.call_soon_threadsafe(self._hand_over, loop)
            except RuntimeError:  # the loop is closed: nobody awaits these any more
                with self._lock:
                    self._finished.pop(loop, None)

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``: settle every call of it that finished since it was woken."""
        with self._lock:
            finished = self._finished.pop(loop, [])
        for future, ok, result in finished:
            if future.cancelled():
                continue
            if ok:
                future.set_result(result)
            else:
                future.set_exception(result)

    def shutdown(self) -> None:
        """Run the calls already made, then stop the threads (no new call is taken)."""
        with self._lock:
            self._shut = True
            threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join()
