"""NATS and JetStream: connection, the events stream, and its subject scheme."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from nats import errors as nats_errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

log = logging.getLogger("smq.bus")
T = TypeVar("T")

POSITION = "Smq-Position"
STORE = "Smq-Store"  # the identity of the store that wrote the message (infra.streamowner)
MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_MSG_ID = "Nats-Expected-Last-Msg-Id"


def cause(exc: BaseException) -> str:
    """An exception as a log line: its type, and its message (or repr when it has none)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else repr(exc)


@dataclass(frozen=True)
class Servers:
    """``SMQ_NATS_URL``: one server or several, comma-separated (``nats://a:4222,nats://b:4222``).
    Credentials may be in any URL (``nats://user:password@host``; one set for all, taken from
    the first URL that has some): they are passed apart, so the servers a cluster tells about
    later (which come without them) are logged into with them too."""

    urls: tuple[str, ...]
    user: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line
    token: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> Servers:
        urls: list[str] = []
        creds: tuple[str | None, str | None] = (None, None)
        for item in (u.strip() for u in url.split(",")):
            if not item:
                continue
            if "://" not in item:
                item = "nats://" + item
            parts = urlsplit(item)
            if parts.username is not None and creds == (None, None):
                creds = (unquote(parts.username), None if parts.password is None else unquote(parts.password))
            host = parts.netloc.rsplit("@", 1)[-1]
            if ":" not in host.rsplit("]", 1)[-1]:
                host += ":4222"
            urls.append(urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)))
        if not urls:
            raise ValueError("SMQ_NATS_URL names no server")
        user, password = creds
        if user is not None and password is None:  # nats://token@host
            return cls(tuple(urls), token=user)
        return cls(tuple(urls), user, password)


async def probe(url: str, bound: float) -> str | None:
    """None when a NATS server answers at ``url`` (its INFO line within ``bound`` seconds),
    else why not (the cause, for the log)."""
    parts = urlsplit(url)
    if parts.scheme not in ("nats", "tls"):
        return None  # websockets: left to the client
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, parts.port or 4222), bound)
    except (OSError, TimeoutError) as exc:
        return cause(exc) if not isinstance(exc, TimeoutError) else f"no connection within {bound:g}s"
    try:
        line = await asyncio.wait_for(reader.readline(), bound)
        return None if line.startswith(b"INFO ") else f"not a NATS server (it said {line[:40]!r})"
    except (OSError, TimeoutError) as exc:
        return cause(exc) if not isinstance(exc, TimeoutError) else f"no INFO within {bound:g}s"
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def connect(url: str, name: str, connect_timeout: float = 2.0,
                  pause: tuple[float, float] = (0.5, 5.0)) -> Client:
    """A client of any listed server that answers, now and later (it reconnects to any of them,
    and to the ones the cluster tells about, forever). At start the servers are probed at once
    (each within ``connect_timeout``), and the client is given the answering ones first; while
    none answers, the log says which failed and why (a WARNING at once, then reminders with
    back-off), and the probe is tried again after a growing pause."""
    servers = Servers.parse(url)
    delay, reminder, next_reminder, started = pause[0], 10.0, 0.0, time.monotonic()
    while True:
        why = await asyncio.gather(*(probe(u, connect_timeout) for u in servers.urls))
        failed = {u: w for u, w in zip(servers.urls, why, strict=True) if w is not None}
        if len(failed) < len(servers.urls):
            break
        now = time.monotonic()
        if now >= next_reminder:
            log.warning("nats: no server answers%s (%s); trying again",
                        f" for {now - started:.0f}s" if next_reminder else "",
                        "; ".join(f"{u}: {w}" for u, w in failed.items()))
            if next_reminder:
                reminder = min(reminder * 2, 300.0)
            next_reminder = now + reminder
        await asyncio.sleep(delay)
        delay = min(delay * 2, pause[1])
    if failed:
        log.warning("nats: not answering: %s; using the others", "; ".join(f"{u}: {w}" for u, w in failed.items()))
    answering = [u for u in servers.urls if u not in failed]
    random.shuffle(answering)  # clients spread over the cluster
    ordered = answering + list(failed)

    async def error_cb(exc: Exception) -> None:
        log.warning("nats: %s", cause(exc))

    async def disconnected_cb() -> None:
        if nc.is_closed or nc.is_draining:  # our own stop: nothing to warn about
            log.debug("nats: disconnected (closing)")
            return
        log.warning("nats: disconnected; reconnecting to any of the servers")

    async def reconnected_cb() -> None:
        log.warning("nats: reconnected to %s", nc.connected_url.netloc.rsplit("@", 1)[-1] if nc.connected_url else "?")

    nc = Client()
    # nats-py annotates reconnect_time_wait as int but sleeps it (a float works): its typing bug.
    await nc.connect(ordered, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,  # type: ignore[arg-type]
                     error_cb=error_cb, disconnected_cb=disconnected_cb, reconnected_cb=reconnected_cb,
                     connect_timeout=max(1, round(connect_timeout)), drain_timeout=5, dont_randomize=True,
                     user=servers.user, password=servers.password, token=servers.token)
    return nc


def stream_config(stream: str, root: str, max_age: float = 0.0, max_bytes: int = -1,
                  replicas: int = 1) -> StreamConfig:
    """The events stream as this service makes it: file storage, duplicates dropped by position,
    and limits-based retention (acks delete nothing), so a subscriber can replay any retained
    position; by default (``max_age`` 0, ``max_bytes`` -1) every event is kept; ``replicas``
    copies on a cluster (``SMQ_STREAM_REPLICAS``)."""
    return StreamConfig(
        name=stream, subjects=[f"{root}.>"], retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE, discard=DiscardPolicy.OLD, duplicate_window=120.0,
        allow_direct=True, max_age=max_age, max_bytes=max_bytes, max_msgs=-1, num_replicas=replicas,
    )


def differences(found: StreamConfig, wanted: StreamConfig) -> list[str]:
    """How an existing stream differs from the one this service would make (empty: it does not):
    in what the service relies on (subjects, retention, storage) and in what it is told
    (replicas, limits)."""
    def norm(value: object) -> object:
        return getattr(value, "value", value)

    out = []
    pairs = {"subjects": (sorted(found.subjects or []), sorted(wanted.subjects or [])),
             "retention": (norm(found.retention), norm(wanted.retention)),
             "storage": (norm(found.storage), norm(wanted.storage)),
             "replicas": (found.num_replicas or 1, wanted.num_replicas or 1),
             "max_age": (found.max_age or 0.0, wanted.max_age or 0.0),
             "max_bytes": (found.max_bytes or -1, wanted.max_bytes or -1)}
    for name, (have, want) in pairs.items():
        if have != want:
            out.append(f"{name} {have} (configured: {want})")
    return out


# What ``ensure_stream`` changes on an existing stream; the rest (subjects, retention, storage)
# is the operator's to decide: said loudly, never changed.
UPDATABLE = frozenset({"replicas", "max_age", "max_bytes"})


def transient(exc: BaseException) -> bool:
    """A JetStream that will answer soon: no reply (a leader being elected), no responders, or
    "temporarily unavailable" (503)."""
    return isinstance(exc, (nats_errors.TimeoutError, nats_errors.NoRespondersError, TimeoutError,
                            ServiceUnavailableError)) or (isinstance(exc, APIError) and exc.code == 503)


async def _settled(call: Callable[[], Awaitable[T]], what: str, pause: tuple[float, float] = (0.25, 5.0)) -> T:
    """``call()``, tried again while JetStream answers nothing or "temporarily unavailable" (a
    cluster electing its leader: seconds): a WARNING at once, then reminders with back-off."""
    delay, started, next_reminder, reminder = pause[0], time.monotonic(), 0.0, 10.0
    while True:
        try:
            return await call()
        except Exception as exc:
            if not transient(exc):
                raise
            now = time.monotonic()
            if now >= next_reminder:
                log.warning("nats: %s: JetStream does not answer yet (%s, for %.1fs); trying again",
                            what, cause(exc), now - started)
                if next_reminder:
                    reminder = min(reminder * 2, 300.0)
                next_reminder = now + reminder
        await asyncio.sleep(delay)
        delay = min(delay * 2, pause[1])


async def _info_or_create(js: JetStreamContext, wanted: StreamConfig) -> StreamInfo | None:
    """The stream's info, or None once it is created as ``wanted``."""
    try:
        return await js.stream_info(wanted.name or "")
    except NotFoundError:
        await js.add_stream(wanted)
        return None


async def ensure_stream(js: JetStreamContext, stream: str, root: str, max_age: float = 0.0,
                        max_bytes: int = -1, replicas: int = 1) -> list[str]:
    """Create the events stream (``stream_config``), or check an existing one: a changed limit
    or replica count is applied (JetStream updates a stream in place; a replica count change is
    logged as a WARNING), anything else that differs is an ERROR in the log and in the
    ``stream_config`` check of ``/health``. Returns what still differs."""
    wanted = stream_config(stream, root, max_age, max_bytes, replicas)
    info = await _settled(lambda: _info_or_create(js, wanted), f"looking up stream {stream}")
    if info is None:
        log.info("nats: stream %s created (%d replica%s)", stream, replicas, "" if replicas == 1 else "s")
        return []
    found = differences(info.config, wanted)
    if any(d.split(" ", 1)[0] in UPDATABLE for d in found):
        cfg = replace(info.config, max_age=max_age, max_bytes=max_bytes, num_replicas=replicas)
        if (info.config.num_replicas or 1) != replicas:
            log.warning("nats: stream %s has %d replica(s), SMQ_STREAM_REPLICAS is %d: updating the stream",
                        stream, info.config.num_replicas or 1, replicas)
        try:
            info = await js.update_stream(cfg)
        except Exception as exc:  # noqa: BLE001 - said below, with what is left as it was
            log.error("nats: updating stream %s failed (%s)", stream, cause(exc))
        found = differences(info.config, wanted)
    if found:
        log.error("nats: stream %s differs from its configuration: %s; it is used as it is, and /health"
                  " fails its stream_config check until the stream or the settings are put right",
                  stream, "; ".join(found))
    return found


async def sequence_after(js: JetStreamContext, stream: str, root: str, position: int) -> tuple[int, int]:
    """Where to start a consumer to get the events after ``position``: the stream sequence of
    the first such event (one past the last message when there is none), and the position of
    the first retained event (0 for an empty stream). Sequences and positions differ (the
    store's positions may skip, retention drops old messages) but grow together, so a binary
    search over the ``Smq-Position`` headers finds it."""
    info = await js.stream_info(stream)
    lo, hi = info.state.first_seq, info.state.last_seq + 1
    if info.state.messages == 0:
        return hi, 0

    async def at_or_after(seq: int) -> tuple[int, int]:
        msg = await js.get_msg(stream, seq, subject=f"{root}.>", next=True)
        return msg.seq or seq, int((msg.headers or {}).get(POSITION) or 0)

    first = (await at_or_after(lo))[1]
    while lo < hi:
        mid = (lo + hi) // 2
        seq, pos = await at_or_after(mid)
        if pos > position:
            hi = mid
        else:
            lo = seq + 1
    return lo, first
