"""The revoker's stop ends even when its task swallows a cancellation (as ``wait_for`` could in
Python 3.11 when a short bound ended as the cancellation came): it was the test suite's
two-minute hang at an MQTT service's teardown."""

from __future__ import annotations

import asyncio

from workers.revoker import Revoker


async def test_stop_ends_a_task_that_swallowed_a_cancellation() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 1:
                    raise  # the second cancellation ends it

    revoker = object.__new__(Revoker)
    revoker._subs = []
    task = asyncio.create_task(stubborn())
    revoker._task = task
    await asyncio.sleep(0)  # it waits
    stopping = asyncio.create_task(revoker.stop())
    done, _ = await asyncio.wait({stopping}, timeout=10)  # a bound on a hang, not a speed
    if not done:  # (the old stop: it awaited the task, which had swallowed its one cancellation)
        task.cancel()
        stopping.cancel()
    assert done and task.cancelled() and swallowed == 2
