"""NATS and JetStream: connection, the events stream, and its subject scheme."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger("smq.bus")

POSITION = "Smq-Position"
MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_MSG_ID = "Nats-Expected-Last-Msg-Id"


async def connect(url: str, name: str) -> Client:
    async def error_cb(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    return await nats.connect(url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                              error_cb=error_cb, connect_timeout=5, drain_timeout=5)


async def ensure_stream(js: JetStreamContext, stream: str, root: str) -> None:
    """The events stream: file storage, every event kept, duplicates dropped by position."""
    config = StreamConfig(
        name=stream, subjects=[f"{root}.>"], retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE, discard=DiscardPolicy.OLD, duplicate_window=120.0,
        allow_direct=True,
    )
    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(config)
