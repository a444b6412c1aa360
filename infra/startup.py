"""The start of a role: waiting for its servers, and cut short by SIGTERM or SIGINT.

A role's start waits for every server it needs (PostgreSQL, Redis, NATS and its stream):
each try is bounded, a server that does not answer is logged once at once, then with
back-off (after 5, 10, 20, … s, at most every 5 minutes), naming the server and why, and
tried again (every 0.5 s at first, every 5 s later) until it answers. The start is an asyncio
task that `smq`'s signal handlers cancel; a synchronous step runs either in a daemon thread
of its own (``in_thread``: abandoned when the start is cancelled, the process does not wait
for it) or on the event loop's thread inside ``interruptible`` (the embedded servers' start),
where SIGTERM and SIGINT raise ``StartInterrupted``. Either way the start undoes what it
started (embedded servers included) and the process exits within ``STOP_BOUND``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

log = logging.getLogger("smq.start")
T = TypeVar("T")

SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_BOUND = 10.0  # how long an interrupted start may take to undo itself before the process exits
RETRY_FIRST, RETRY_MAX = 0.5, 5.0  # pause between tries: doubled from the first up to the max
LOG_AFTER, LOG_MAX = 5.0, 300.0  # a wait logged at once, then after 5, 10, 20, … s, at most every 5 min

_armed = False
stage = "starting"  # what the start is doing now: named by the line of an interrupted start


class StartInterrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt: not an error
    """SIGTERM or SIGINT during a synchronous step of the start."""


def arm() -> None:
    """Let ``interruptible`` steps raise ``StartInterrupted`` on SIGTERM and SIGINT (the
    ``smq`` roles arm it; a start inside a test or a library call is not cut short)."""
    global _armed
    _armed = True


def set_stage(what: str) -> None:
    global stage
    stage = what


@contextlib.contextmanager
def interruptible(what: str) -> Iterator[None]:
    """A synchronous step on the event loop's thread (which cannot run the loop's signal
    handlers meanwhile): SIGTERM and SIGINT raise ``StartInterrupted`` in it."""
    set_stage(what)
    if not _armed or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: Any) -> None:
        raise StartInterrupted(signal.Signals(signum).name)

    saved = {sig: signal.signal(sig, interrupt) for sig in SIGNALS}
    try:
        yield
    finally:  # the loop's handlers again (they see the signal too, through its wakeup fd)
        for sig, handler in saved.items():
            signal.signal(sig, handler)


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a daemon thread of its own: a cancelled start abandons it (a thread of
    the default executor would keep the process until it ends; this one does not)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, exc: BaseException | None) -> None:
        if done.done():
            return
        if exc is not None:
            done.set_exception(exc)
        else:
            done.set_result(result)

    def run() -> None:
        try:
            result, exc = fn(*args), None
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting task
            result, exc = None, e
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(settle, result, exc)

    threading.Thread(target=run, name=getattr(fn, "__name__", "start-step"), daemon=True).start()
    return await done


def why(exc: BaseException, bound: float | None = None) -> str:
    """A failure in one line."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {bound:g} s" if bound else "timed out"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


async def reach(what: str, where: str, attempt: Callable[[], Awaitable[T]],
                retry_on: tuple[type[BaseException], ...], bound: float | None = 15.0) -> T:
    """``attempt()`` (each try within ``bound`` seconds) until it succeeds. A failure among
    ``retry_on`` is a server not there yet: logged once, then with back-off, and tried again."""
    set_stage(f"connecting to {what} at {where}")
    began, pause, next_log, failures = time.monotonic(), RETRY_FIRST, 0.0, 0
    retried: tuple[type[BaseException], ...] = (*retry_on, TimeoutError)
    while True:
        try:
            result = await (asyncio.wait_for(attempt(), bound) if bound else attempt())
        except retried as exc:
            failures += 1
            waited = time.monotonic() - began
            reason = why(exc, bound)
            set_stage(f"waiting for {what} at {where} ({reason})")
            if waited >= next_log:
                log.warning("start: waiting for %s at %s: %s (%d tries in %.0f s; trying again with back-off)",
                            what, where, reason, failures, waited)
                next_log = waited + min(max(LOG_AFTER, waited), LOG_MAX)
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX)
            continue
        if failures:
            log.info("start: %s at %s answered after %.1f s", what, where, time.monotonic() - began)
        return result


def nats_servers(url: str) -> list[tuple[str, int]]:
    """The (host, port) of each server in a NATS URL (a comma-separated list of them)."""
    found = []
    for part in url.split(","):
        part = part.strip()
        if not part:
            continue
        u = urlsplit(part if "://" in part else "nats://" + part)
        found.append((u.hostname or "127.0.0.1", u.port or 4222))
    return found


async def nats_answers(url: str, bound: float = 5.0) -> None:
    """Some server of the list speaks NATS (its greeting is ``INFO {…}``); else an OSError
    naming each server's failure."""
    failures = []
    for host, port in nats_servers(url):
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), bound)
            try:
                line = await asyncio.wait_for(reader.readline(), bound)
            finally:
                writer.close()
            if line.startswith(b"INFO"):
                return
            failures.append(f"{host}:{port}: not a NATS server")
        except (OSError, TimeoutError) as exc:
            failures.append(f"{host}:{port}: {why(exc, bound)}")
    raise OSError("; ".join(failures) or "no server in the URL")


def redact(url: str) -> str:
    """A URL without its password (each of a comma-separated list)."""
    if "," in url:
        return ",".join(redact(u.strip()) for u in url.split(","))
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user, sep, password = creds.partition(":")
    return f"{scheme}://{user}:***@{host}" if sep and password else f"{scheme}://{user}@{host}"
