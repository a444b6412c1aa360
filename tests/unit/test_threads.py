"""The store's threads (``infra.threads``): what a call gives back, in which order calls run,
a cancelled call, shutdown."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from infra.threads import Workers

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


async def test_a_call_runs_on_a_thread_and_gives_its_result_or_its_exception() -> None:
    workers = Workers(2, "test")
    assert await workers.run(threading.current_thread) is not threading.current_thread()

    def fails() -> None:
        raise LookupError("gone")

    with pytest.raises(LookupError, match="gone"):
        await workers.run(fails)
    workers.shutdown()


async def test_calls_that_finish_together_each_get_their_own_result() -> None:
    workers = Workers(4, "test")
    results = await asyncio.gather(*(workers.run(lambda i=i: i * i) for i in range(200)))
    assert results == [i * i for i in range(200)]
    workers.shutdown()


async def test_calls_start_in_order_and_without_the_callers_context() -> None:
    workers = Workers(1, "test")
    VAR.set("the caller's")
    started: list[int] = []
    await asyncio.gather(*(workers.run(lambda i=i: started.append(i)) for i in range(20)))
    assert started == list(range(20))
    assert await workers.run(VAR.get) == "unset"  # as run_in_executor: no context copied
    workers.shutdown()


async def test_a_call_cancelled_before_it_started_does_not_run() -> None:
    workers = Workers(1, "test")
    gate, ran = threading.Event(), []
    busy = workers.run(lambda: gate.wait(5))
    later = workers.run(lambda: ran.append("later"))
    later.cancel()
    gate.set()
    assert await busy is True
    assert await workers.run(lambda: "next") == "next"  # the cancelled call was passed over
    assert ran == []
    workers.shutdown()


async def test_shutdown_runs_the_calls_made_then_refuses_new_ones() -> None:
    workers = Workers(2, "test")
    gate, ran = threading.Event(), []
    calls = [workers.run(lambda i=i: (gate.wait(5), ran.append(i))) for i in range(6)]
    stopping = asyncio.get_running_loop().run_in_executor(None, workers.shutdown)
    gate.set()
    await stopping
    assert sorted(ran) == list(range(6))
    await asyncio.gather(*calls)
    with pytest.raises(RuntimeError):
        workers.run(lambda: None)
