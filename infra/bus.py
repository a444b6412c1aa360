"""NATS and JetStream: connection, the events stream, and its subject scheme."""

from __future__ import annotations

import logging
from dataclasses import replace

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger("smq.bus")

POSITION = "Smq-Position"
STORE = "Smq-Store"  # the identity of the store that wrote the message (infra.streamowner)
MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_MSG_ID = "Nats-Expected-Last-Msg-Id"


async def connect(url: str, name: str) -> Client:
    async def error_cb(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    return await nats.connect(url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                              error_cb=error_cb, connect_timeout=5, drain_timeout=5)


async def ensure_stream(js: JetStreamContext, stream: str, root: str, max_age: float = 0.0,
                        max_bytes: int = -1) -> None:
    """The events stream: file storage, duplicates dropped by position, and limits-based
    retention (acks delete nothing), so a subscriber can replay any retained position; by
    default (``max_age`` 0, ``max_bytes`` -1) every event is kept. A changed limit is applied
    to an existing stream."""
    config = StreamConfig(
        name=stream, subjects=[f"{root}.>"], retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE, discard=DiscardPolicy.OLD, duplicate_window=120.0,
        allow_direct=True, max_age=max_age, max_bytes=max_bytes, max_msgs=-1,
    )
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(config)
        return
    if (info.config.max_age or 0.0, info.config.max_bytes or -1) != (max_age, max_bytes):
        await js.update_stream(replace(info.config, max_age=max_age, max_bytes=max_bytes))


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
