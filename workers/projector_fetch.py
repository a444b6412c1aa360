"""The projector's fetch, without nats-py's cost per message.

``PullSubscription.fetch(n)`` waits for each of the ``n`` messages with ``next_msg``, which
starts a task and an ``asyncio.wait_for`` per message, even when the message is already in
the subscription's queue (a batch arrives in a few socket reads): about half of the
projector's CPU per event went there (docs/performance.md). ``quick`` gives the pull
subscription a ``next_msg`` that takes a queued message at once and waits, as before, only
when the queue is empty; the library's fetch is otherwise unchanged (its requests, status
messages, time-outs), and so are the messages.

``stream_sequence`` reads a message's stream sequence from its reply subject without building
the library's ``Metadata`` (a frozen dataclass and a datetime per message).
"""

from __future__ import annotations

from typing import Any

from nats.aio.msg import Msg


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


def quick(psub: Any) -> Any:
    """``psub`` (a nats-py pull subscription), its fetch taking queued messages at once."""
    sub = psub._sub  # noqa: SLF001
    if not isinstance(sub, _QuickNext):
        psub._sub = _QuickNext(sub)  # noqa: SLF001
    return psub


def stream_sequence(msg: Msg) -> int:
    """The stream sequence of a JetStream message, from its reply subject
    (``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>``,
    or the longer form with a domain and an account hash before the stream), as the library."""
    tokens = (msg.reply or "").split(".")
    if tokens[:2] == ["$JS", "ACK"]:
        if len(tokens) == 9:
            return int(tokens[5])
        if len(tokens) >= 11:
            return int(tokens[7])
    return int(msg.metadata.sequence.stream)  # anything else: as the library reads it (or raises)
