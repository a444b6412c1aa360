"""Pipelined JetStream publishes whose acknowledgements come to one inbox of the relay's.

nats-py's ``publish_async`` costs about 50 µs of CPU per message (a semaphore taken through
``asyncio.wait_for``, a random token, a future with a callback, the acknowledgement read with
``json.loads`` and built field by field into a dataclass); here a message is one
``publish`` with a reply subject ``<inbox>.<n>`` and its acknowledgement one msgspec decode:
about 20 µs (docs/performance.md). What an acknowledgement says is the same: the stream's
sequence and whether it was a duplicate, or the API error it carried (raised as nats-py
raises it; nats-py's ``publish_async`` never resolved a refused one), or no stream at all
(``NoStreamResponseError``).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import msgspec
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

NO_RESPONDERS = "503"


class PubAck(msgspec.Struct):
    """A JetStream publish acknowledgement (the fields the relay reads)."""

    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    domain: str | None = None
    error: dict[str, Any] | None = None


_decode = msgspec.json.Decoder(PubAck).decode


class Acks:
    """Publishes on JetStream with acknowledgements to ``<inbox>.<n>``, one subscription."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self._prefix = ""
        self._sub: Subscription | None = None
        self._count = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[PubAck]] = {}

    async def _start(self) -> None:
        self._prefix = self.nc.new_inbox()
        self._sub = await self.nc.subscribe(self._prefix + ".*", cb=self._acked,
                                            pending_msgs_limit=1_000_000)

    async def _acked(self, msg: Msg) -> None:
        future = self._waiting.pop(msg.subject, None)
        if future is None or future.done():
            return
        if not msg.data and msg.headers and msg.headers.get("Status") == NO_RESPONDERS:
            future.set_exception(nats.js.errors.NoStreamResponseError())
            return
        try:
            ack = _decode(msg.data)
        except msgspec.DecodeError as exc:
            future.set_exception(nats.js.errors.Error(f"an acknowledgement that is not one: {exc}"))
            return
        if ack.error is None:
            future.set_result(ack)
            return
        try:  # it raises the error class of the code (nats-py's own handler lost it there)
            nats.js.errors.APIError.from_error(ack.error)
        except nats.js.errors.Error as err:
            future.set_exception(err)
        else:
            future.set_exception(nats.js.errors.APIError(description=str(ack.error)))

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> asyncio.Future[PubAck]:
        """Send one message; the future of its acknowledgement (``forget`` it if not awaited)."""
        if self._sub is None:
            await self._start()
        token = f"{self._prefix}.{next(self._count)}"
        future: asyncio.Future[PubAck] = asyncio.get_running_loop().create_future()
        self._waiting[token] = future
        await self.nc.publish(subject, payload, reply=token, headers=headers)
        return future

    def forget(self) -> None:
        """Drop every acknowledgement still awaited (a batch given up on: retried from the
        stream's last message)."""
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()

    async def close(self) -> None:
        self.forget()
        if self._sub is not None:
            sub, self._sub = self._sub, None
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001,S110 - the connection may be gone already
                pass
