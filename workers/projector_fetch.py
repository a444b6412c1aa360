"""The projector's fetch, without nats-py's cost per message.

``PullSubscription.fetch(n)`` waits for each of the ``n`` messages with ``next_msg``, which
starts a task and an ``asyncio.wait_for`` per message, even when the message is already in
the subscription's queue (a batch arrives in a few socket reads): about half of the
projector's CPU per event went there (docs/performance.md). ``quick`` gives the pull
subscription a ``next_msg`` that takes a queued message at once and waits, as before, only
when the queue is empty; the library's fetch is otherwise unchanged (its requests, status
messages, time-outs), and so are the messages.

``quick`` also spares the subscription's messages nats-py's parsing of their header blocks
into dicts (a twelfth of the projector's CPU; the projector reads no header): a message of it
whose block carries no status keeps the block as it came (``raw_headers``) and ``headers``
None. A status (no messages, time-out, heartbeat) is parsed as before, since the library's
fetch reads it, and so is every message of every other subscription of the connection.

``stream_sequence`` reads a message's stream sequence from its reply subject without building
the library's ``Metadata`` (a frozen dataclass and a datetime per message).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from nats.aio import client as nats_client
from nats.aio.msg import Msg

_HEAD = len(b"NATS/1.0")  # the header block's first line; a status follows it after a space
_RAW = "_smq_raw_headers"  # on a message: its header block
_FAST = "_smq_fast_headers"  # on a client: its _RawHeaders


class _QuickNext:
    """A subscription whose ``next_msg`` takes a queued message without a task; everything
    else (attributes read and written) is the subscription's own."""

    __slots__ = ("_sub",)

    def __init__(self, sub: Any) -> None:
        object.__setattr__(self, "_sub", sub)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_sub"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_sub"), name, value)

    async def next_msg(self, timeout: float | None = 1.0) -> Msg:  # noqa: ASYNC109 - as the library
        sub = object.__getattribute__(self, "_sub")
        queue = sub._pending_queue  # noqa: SLF001
        if not queue.empty() and not sub._conn.is_closed:  # noqa: SLF001
            msg: Msg = queue.get_nowait()
            sub._pending_size -= len(msg.data)  # noqa: SLF001 - as next_msg keeps it
            queue.task_done()
            return msg
        got: Msg = await sub.next_msg(timeout)
        return got


class _RawHeaders:
    """Installed once on a client: the messages of the subscriptions in ``sids`` keep a header
    block without a status raw. The library's own ``_process_msg`` still handles each (its
    counts, its slow-consumer bounds, its queues), given no header block to parse; the
    message it builds then gets the block back as ``raw_headers``."""

    def __init__(self, nc: Any) -> None:
        self.sids: set[int] = set()
        self._raw: bytes | None = None  # the block of the message being processed, if kept
        self._process_msg, self._build_message = nc._process_msg, nc._build_message  # noqa: SLF001
        nc._process_msg, nc._build_message = self.process_msg, self.build_message  # noqa: SLF001

    def process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes,
                    headers: bytes | None) -> Coroutine[Any, Any, None]:
        """The library's coroutine for the message (the parser awaits it at once)."""
        self._raw = None
        if headers and sid in self.sids and len(headers) > _HEAD and headers[_HEAD] != 32 \
                and b"Status" not in headers:  # (a line named Status would be read as one)
            self._raw, headers = headers, None
        return self._process_msg(sid, subject, reply, data, headers)

    def build_message(self, sid: int, subject: bytes, reply: bytes, data: bytes,
                      headers: dict[str, str] | None) -> Msg:
        msg: Msg = self._build_message(sid, subject, reply, data, headers)
        if self._raw is not None:
            setattr(msg, _RAW, self._raw)
            self._raw = None
        return msg


def _raw_headers_on(sub: Any) -> None:
    conn = sub._conn  # noqa: SLF001
    if nats_client.parse_email is not None or not hasattr(nats_client.Client, "_parse_header_lines") \
            or conn.msg_class is not Msg:
        return  # a nats-py that reads headers another way, or other messages: left alone
    fast = conn.__dict__.get(_FAST)
    if fast is None:
        fast = _RawHeaders(conn)
        setattr(conn, _FAST, fast)
    fast.sids.intersection_update(conn._subs)  # noqa: SLF001 - forget the subscriptions gone
    fast.sids.add(sub._id)  # noqa: SLF001


def quick(psub: Any) -> Any:
    """``psub`` (a nats-py pull subscription), its fetch taking queued messages at once, its
    messages' header blocks left unparsed."""
    sub = psub._sub  # noqa: SLF001
    if not isinstance(sub, _QuickNext):
        _raw_headers_on(sub)
        psub._sub = _QuickNext(sub)  # noqa: SLF001
    return psub


def raw_headers(msg: Msg) -> bytes | None:
    """The header block a message of a ``quick`` subscription kept as it came (None: none
    kept, ``msg.headers`` has them)."""
    raw: bytes | None = getattr(msg, _RAW, None)
    return raw


def headers_of(msg: Msg) -> dict[str, str] | None:
    """A message's headers, as nats-py parses them, whether kept raw or not."""
    raw = raw_headers(msg)
    if raw is None:
        return msg.headers
    return nats_client.Client._parse_header_lines(raw[_HEAD + 2:]) or None  # noqa: SLF001


def stream_sequence(msg: Msg) -> int:
    """The stream sequence of a JetStream message, from its reply subject
    (``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>``,
    or the longer form with a domain and an account hash before the stream), as the library."""
    reply = msg.reply or ""
    if reply.startswith("$JS.ACK."):
        dots = reply.count(".")
        if dots == 8:  # (the tokens after the stream sequence: 4)
            return int(reply.rsplit(".", 4)[1])
        if dots >= 10:
            return int(reply.split(".")[7])
    return int(msg.metadata.sequence.stream)  # anything else: as the library reads it (or raises)
