"""Admission control: commands are held while the views are further behind this process's
commits than the bound, released as they catch up, never held for views that do not move."""

from __future__ import annotations

import asyncio
import time

import pytest

from infra import admission, metrics
from infra.admission import Admission


class Views:
    """Views whose least position the test moves (what ``Freshness.lowest`` reads)."""

    def __init__(self) -> None:
        self.position = 0
        self.reads = 0

    async def reached(self) -> int:
        self.reads += 1
        return self.position


def _held_count() -> float:
    return metrics.REGISTRY.get_sample_value("smq_admission_wait_seconds_count") or 0.0


async def _lagging(adm: Admission, bound: float) -> None:
    """Until the lag of the unapplied commits passes ``bound`` (a condition, not a sleep)."""
    deadline = time.monotonic() + 5
    while adm.lag() <= bound:
        assert time.monotonic() < deadline, "the lag never grew"
        await asyncio.sleep(0.01)


async def test_a_command_waits_while_the_views_lag_and_goes_once_they_catch_up() -> None:
    views = Views()
    adm = Admission(views.reached, bound=0.05, hold_max=10)
    await adm.admit()  # nothing committed: no wait
    adm.committed(10)
    adm.committed(20)
    await _lagging(adm, 0.05)
    before = _held_count()
    held = asyncio.create_task(adm.admit())
    views.position = 10  # the views move, but not past the last commit
    await asyncio.sleep(0.1)  # (lets the poller run rounds: the command must still be held)
    assert not held.done() and views.reads > 1
    assert metrics.REGISTRY.get_sample_value("smq_admission_waiting") == 1
    views.position = 20
    await asyncio.wait_for(held, 2)
    assert adm.lag() == 0
    assert _held_count() == before + 1
    assert metrics.REGISTRY.get_sample_value("smq_admission_waiting") == 0
    await asyncio.wait_for(adm.admit(), 0.5)  # caught up: at once
    adm.close()


async def test_views_that_do_not_move_hold_nobody(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admission, "STALL", 0.2)
    views = Views()
    adm = Admission(views.reached, bound=0.05, hold_max=30)
    adm.committed(5)
    await _lagging(adm, 0.05)
    started = time.monotonic()
    await asyncio.wait_for(adm.admit(), 5)  # held until the views count as stalled, no longer
    assert time.monotonic() - started < 1
    await asyncio.wait_for(adm.admit(), 0.05)  # stalled: at once
    adm.close()


async def test_a_command_is_held_at_most_hold_max() -> None:
    views = Views()
    adm = Admission(views.reached, bound=0.02, hold_max=0.2)
    adm.committed(100)
    await _lagging(adm, 0.02)

    async def crawl() -> None:  # the views move, never reaching the commit
        while views.position < 99:
            views.position += 1
            await asyncio.sleep(0.01)
    mover = asyncio.create_task(crawl())
    started = time.monotonic()
    await asyncio.wait_for(adm.admit(), 5)
    assert 0.2 <= time.monotonic() - started < 1.5
    mover.cancel()
    adm.close()


async def test_no_bound_no_hold() -> None:
    views = Views()
    adm = Admission(views.reached, bound=0, hold_max=10)
    adm.committed(7)
    assert adm.lag() == 0 and views.reads == 0
    await asyncio.wait_for(adm.admit(), 0.05)
