"""Admission control on the views' lag: when the views fall behind this process's commits by
more than a bound, new commands wait before they run, so the write rate meets the rate the
views are projected at instead of the lag growing.

The lag is measured in time, from what this process committed: the age of its oldest commit
that some view has not applied yet (``reached``: the least position of every view, read only
when that age passes the bound, so a process whose views keep up pays nothing). A
command is held while that lag is above ``bound``, at most ``hold_max`` seconds; it is never
held when the views are not moving at all (a failing or absent projector: /health and
``smq_view_stalled`` say that; holding every writer would not cure it). What is held is
shown in /metrics: ``smq_admission_wait_seconds`` (each held command's wait),
``smq_admission_waiting`` (held now) and ``smq_admission_lag_seconds``.

Nothing is refused: a held command runs after its wait like any other, and what it answers
is committed before it answers, as always.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from infra import metrics

log = logging.getLogger("smq.admission")

POLL = 0.02  # seconds between two reads of the views' positions while commands are held
STALL = 2.0  # views that have not moved for this long are not waited for
COALESCE = 0.01  # commits closer in time than this share one entry (their highest position)
KEEP = 4096  # entries remembered at most (a view stopped for long: the lag saturates)
SAY_EVERY = 60.0  # seconds between the WARNING lines while writers are held


class Admission:
    def __init__(self, reached: Callable[[], Awaitable[int]], bound: float, hold_max: float) -> None:
        self.reached, self.bound, self.hold_max = reached, bound, hold_max
        self._commits: deque[tuple[int, float]] = deque(maxlen=KEEP)  # (position, committed at)
        self._reached = 0
        self._moved_at = time.monotonic()
        self._refresh: asyncio.Task[None] | None = None
        self._refreshed_at = 0.0
        self._said: float | None = None
        self._held_since_said = 0

    def committed(self, position: int) -> None:
        """A command of this process committed at ``position`` (called on the event loop)."""
        if self.bound <= 0 or position <= self._reached:
            return
        now = time.monotonic()
        if self._commits and now - self._commits[-1][1] < COALESCE:
            last = self._commits[-1]
            self._commits[-1] = (max(last[0], position), last[1])
        else:
            if not self._commits:
                self._moved_at = now  # the views are waited for from now on
            self._commits.append((position, now))

    def lag(self) -> float:
        """Seconds since this process's oldest commit that not every view held at the last
        look (an over-estimate between looks: the views are looked at when it passes the bound)."""
        return time.monotonic() - self._commits[0][1] if self._commits else 0.0

    def _moving(self) -> bool:
        return time.monotonic() - self._moved_at < STALL

    async def _look(self) -> None:
        """Read the views' least position (one read shared by concurrent callers, at most one
        every ``POLL``): commits it covers are forgotten."""
        if self._refresh is None or (self._refresh.done() and time.monotonic() - self._refreshed_at >= POLL):
            self._refresh = asyncio.get_running_loop().create_task(self._read())
        await asyncio.shield(self._refresh)

    async def _read(self) -> None:
        try:
            reached = await self.reached()
        except Exception as exc:  # noqa: BLE001 - the stores' own checks say it; not held
            log.debug("admission: reading the views' positions failed: %s", exc)
            self._moved_at = time.monotonic() - STALL  # unknown: do not hold writers
            return
        finally:
            self._refreshed_at = time.monotonic()
        if reached > self._reached:
            self._reached, self._moved_at = reached, time.monotonic()
        while self._commits and self._commits[0][0] <= self._reached:
            self._commits.popleft()
        metrics.admission_lag(self.lag())

    async def admit(self) -> None:
        """Return once a new command may run: at once while the views keep up (no look at
        them while this process's oldest unapplied commit is younger than the bound)."""
        if self.bound <= 0 or self.lag() <= self.bound:
            return
        await self._look()
        if self.lag() <= self.bound or not self._moving():
            return
        started = time.monotonic()
        self._say()
        metrics.admission_waiting(1)
        try:
            while time.monotonic() - started < self.hold_max:
                await asyncio.sleep(POLL)
                await self._look()
                if self.lag() <= self.bound or not self._moving():
                    break
        finally:
            metrics.admission_waiting(-1)
            metrics.admission_wait(time.monotonic() - started)

    def _say(self) -> None:
        self._held_since_said += 1
        now = time.monotonic()
        if self._said is None or now - self._said >= SAY_EVERY:
            log.warning("admission: commands are held while the views are %.2fs behind this process's"
                        " commits (bound %.2fs; %d held since the last such line; see"
                        " smq_admission_wait_seconds)", self.lag(), self.bound, self._held_since_said)
            self._said, self._held_since_said = now, 0

    def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
