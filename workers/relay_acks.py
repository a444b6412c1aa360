"""Pipelined JetStream publishes whose acknowledgements come to one inbox of the relay's.

nats-py's ``publish_async`` costs about 50 µs of CPU per message (a semaphore taken through
``asyncio.wait_for``, a random token, a future with a callback, the acknowledgement read with
``json.loads`` and built field by field into a dataclass); here a message is one
``publish`` with a reply subject ``<inbox>.<n>`` and its acknowledgement one msgspec decode:
about 20 µs (docs/performance.md). What an acknowledgement says is the same: the stream's
sequence and whether it was a duplicate, or the API error it carried (raised as nats-py
raises it; nats-py's ``publish_async`` never resolved a refused one), or no stream at all
(``NoStreamResponseError``).

The message itself is written here, not by nats-py's ``publish``, which checks both subjects
with a regular expression and writes the headers key by key (checked, stripped, encoded) for
every message: the relay gives the header block made with one format (``header_block``), and
``publish`` writes the ``HPUB`` command as nats-py does (``nats.protocol.command.hpub_cmd``)
into the client's pending buffer, with nats-py's checks (closed, draining, reconnecting with
a full buffer, the server's max payload; the subject's once), its statistics and its flushing
(``tests/unit/test_relay_frames.py`` holds it to nats-py's bytes).
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Sequence
from typing import Any

import msgspec
import nats.js.errors
from nats import errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from infra.bus import EXPECTED_LAST_MSG_ID, MSG_ID, POSITION, STORE

NO_RESPONDERS = "503"
# nats-py's own rules (``nats.aio.client``): a published subject holds no blank or line break;
# a header value is stripped, its line breaks written as spaces.
_UNSAFE_SUBJECT = re.compile(r"[ \t\r\n]")
_NEWLINES = str.maketrans({"\r": " ", "\n": " "})


def header_block(position: int, store: str, previous: int) -> bytes:
    """The headers of an event's message as nats-py writes them for ``{Nats-Msg-Id, Smq-Position,
    Smq-Store, Nats-Expected-Last-Msg-Id}`` (the last only after a ``previous`` position), in
    that order; ``store`` as nats-py writes a value (``header_value``)."""
    if previous:
        return (f"NATS/1.0\r\n{MSG_ID}: {position}\r\n{POSITION}: {position}\r\n{STORE}: {store}\r\n"
                f"{EXPECTED_LAST_MSG_ID}: {previous}\r\n\r\n").encode()
    return f"NATS/1.0\r\n{MSG_ID}: {position}\r\n{POSITION}: {position}\r\n{STORE}: {store}\r\n\r\n".encode()


def hpub(subject: str, reply: str, headers: bytes, payload: bytes) -> bytes:
    """The command of a message with headers, as nats-py writes it (``hpub_cmd``)."""
    size = len(headers)
    return f"HPUB {subject} {reply} {size} {size + len(payload)}\r\n".encode() + headers + payload + b"\r\n"


def header_value(value: str) -> str:
    """A header's value as nats-py writes it: stripped, line breaks as spaces."""
    return value.strip().translate(_NEWLINES)


class PubAck(msgspec.Struct):
    """A JetStream publish acknowledgement (the fields the relay reads)."""

    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    domain: str | None = None
    error: dict[str, Any] | None = None


_decode = msgspec.json.Decoder(PubAck).decode


class Acks:
    """Publishes on JetStream with acknowledgements to ``<inbox>.<n>``, one subscription whose
    queue ``results`` reads (no callback task, no future per message)."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self._prefix = ""
        self._sub: Subscription | None = None
        self._count = itertools.count(1)
        self._subjects: set[str] = set()  # the subjects already checked

    async def _start(self) -> None:
        self._prefix = self.nc.new_inbox()
        if _UNSAFE_SUBJECT.search(self._prefix):  # (a reply subject is the prefix and a number)
            raise errors.BadSubjectError
        self._sub = await self.nc.subscribe(self._prefix + ".*", pending_msgs_limit=1_000_000)

    async def publish(self, subject: str, payload: bytes, headers: bytes) -> str:
        """Send one message with the header block ``headers`` (``header_block``); the subject
        its acknowledgement comes to (for ``results``)."""
        if self._sub is None:
            await self._start()
        nc = self.nc
        if subject not in self._subjects:  # nats-py's checks of a subject, once each
            if not subject or _UNSAFE_SUBJECT.search(subject):
                raise errors.BadSubjectError
            self._subjects.add(subject)
        if nc.is_closed:
            raise errors.ConnectionClosedError
        if nc.is_draining_pubs:
            raise errors.ConnectionDrainingError
        size = len(payload)
        if not nc.is_connected and (nc._max_pending_size <= 0  # noqa: SLF001
                                    or size + nc._pending_data_size > nc._max_pending_size):  # noqa: SLF001
            raise errors.OutboundBufferLimitError
        if size > nc._max_payload:  # noqa: SLF001
            raise errors.MaxPayloadError
        token = f"{self._prefix}.{next(self._count)}"
        nc.stats["out_msgs"] += 1
        nc.stats["out_bytes"] += size
        await nc._send_command(hpub(subject, token, headers, payload))  # noqa: SLF001 - as _send_publish
        if nc._flush_queue is not None and nc._flush_queue.empty():  # noqa: SLF001
            await nc._flush_pending()  # noqa: SLF001
        return token

    async def results(self, tokens: Sequence[str], bound: float) -> list[PubAck | Exception]:
        """The acknowledgement of each of ``tokens`` (``publish``'s), in their order: a
        ``PubAck``, or the error it carried; ``TimeoutError`` when they have not all come
        within ``bound`` seconds. Acknowledgements of messages given up on are dropped."""
        want = {token: i for i, token in enumerate(tokens)}
        got: list[Any] = [None] * len(tokens)  # each filled once its acknowledgement has come
        if not want:
            return got
        sub = self._sub
        assert sub is not None
        queue = sub._pending_queue  # noqa: SLF001 - read as nats-py's next_msg reads it
        loop = asyncio.get_running_loop()
        deadline = loop.time() + bound
        while want:
            if queue.empty():
                left = deadline - loop.time()
                if left <= 0:
                    raise TimeoutError
                async with asyncio.timeout(left):
                    msg = await queue.get()
            else:
                msg = queue.get_nowait()
            sub._pending_size -= len(msg.data)  # noqa: SLF001 - as next_msg keeps it
            queue.task_done()
            i = want.pop(msg.subject, None)
            if i is not None:
                got[i] = _result(msg)
        return got

    def forget(self) -> None:
        """Drop the acknowledgements already come (a batch given up on: retried from the
        stream's last message); those still to come are dropped by ``results``."""
        if self._sub is None:
            return
        queue = self._sub._pending_queue  # noqa: SLF001
        while not queue.empty():
            self._sub._pending_size -= len(queue.get_nowait().data)  # noqa: SLF001
            queue.task_done()

    async def close(self) -> None:
        self.forget()
        if self._sub is not None:
            sub, self._sub = self._sub, None
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001,S110 - the connection may be gone already
                pass


def _result(msg: Msg) -> PubAck | Exception:
    """What an acknowledgement says: the ``PubAck``, or the error it carries."""
    if not msg.data and msg.headers and msg.headers.get("Status") == NO_RESPONDERS:
        return nats.js.errors.NoStreamResponseError()
    try:
        ack = _decode(msg.data)
    except msgspec.DecodeError as exc:
        return nats.js.errors.Error(f"an acknowledgement that is not one: {exc}")
    if ack.error is None:
        return ack
    try:  # it raises the error class of the code (nats-py's own handler lost it there)
        nats.js.errors.APIError.from_error(ack.error)
    except nats.js.errors.Error as err:
        return err
    return nats.js.errors.APIError(description=str(ack.error))
