"""A raw MQTT 3.1.1 load generator: packets encoded by hand and written on asyncio sockets.

No client library: the publisher writes pre-encoded packets in batches, the subscriber parses
PUBLISH packets straight from the read buffer, so the figures are the broker's and its
authorizer's, not a client library's (paho-mqtt's Python cost halves the rate; docs/mqtt-spike.md).
Each payload starts with the publisher's ``time.time()`` (8 bytes, big-endian double) and a
flag byte (1: measured, 0: warm-up); the subscriber's clock at arrival minus it is the
end-to-end latency. Only what a load generator needs: CONNECT (username, password, clean
session), PUBLISH at QoS 0/1, PUBACK, SUBSCRIBE, DISCONNECT.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from urllib.parse import urlsplit

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGRESP, DISCONNECT = 1, 2, 3, 4, 8, 9, 13, 14
STAMP = struct.Struct("!dB")  # publisher's time.time(), measured flag
HEAD = STAMP.size
DISCONNECT_PACKET = b"\xe0\x00"


class Refused(Exception):
    """The broker refused the CONNECT (its CONNACK return code) or closed the connection."""

    def __init__(self, code: int) -> None:
        super().__init__(f"CONNACK {code}")
        self.code = code


def address(url: str) -> tuple[str, int]:
    """``host, port`` of ``tcp://h:p``, ``mqtt://h:p`` or ``h:p`` (1883 by default)."""
    parts = urlsplit(url if "://" in url else "tcp://" + url)
    return parts.hostname or "127.0.0.1", parts.port or 1883


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


def connect_packet(client_id: str, user: str, password: str | None = None, keepalive: int = 60) -> bytes:
    """CONNECT, clean session, with a username (and a password unless None)."""
    flags = 0x82 | (0x40 if password is not None else 0)
    body = s(b"MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + s(client_id.encode()) + s(user.encode())
    if password is not None:
        body += s(password.encode())
    return b"\x10" + varint(len(body)) + body


def publish_packet(topic: str, payload: bytes, qos: int = 0, pid: int = 0) -> bytes:
    body = s(topic.encode()) + (struct.pack("!H", pid) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + varint(len(body)) + body


def publish_prefix(topic: str, size: int, qos: int) -> bytes:
    """The bytes of a PUBLISH of ``size`` payload bytes up to its packet id (QoS 1) or payload."""
    length = 2 + len(topic.encode()) + (2 if qos else 0) + size
    return bytes([0x30 | (qos << 1)]) + varint(length) + s(topic.encode())


def subscribe_packet(pid: int, topic: str, qos: int) -> bytes:
    body = struct.pack("!H", pid) + s(topic.encode()) + bytes([qos])
    return b"\x82" + varint(len(body)) + body


def puback_packet(pid: int) -> bytes:
    return b"\x40\x02" + struct.pack("!H", pid)


def packets(buf: bytearray) -> tuple[list[tuple[int, int, int]], int]:
    """The whole packets at the start of ``buf``: (first byte, body start, body end), and how
    many bytes they took."""
    out: list[tuple[int, int, int]] = []
    pos, end = 0, len(buf)
    while pos + 2 <= end:
        length, mult, i = 0, 1, pos + 1
        while True:
            if i >= end:
                return out, pos
            b = buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        if i + length > end:
            break
        out.append((buf[pos], i, i + length))
        pos = i + length
    return out, pos


async def open_session(host: str, port: int, client_id: str, user: str, password: str | None,
                       bound: float = 10.0) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection whose CONNECT was accepted; ``Refused`` otherwise."""
    r, w = await asyncio.wait_for(asyncio.open_connection(host, port), bound)
    try:
        w.write(connect_packet(client_id, user, password))
        ack = await asyncio.wait_for(r.readexactly(4), bound)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        w.close()
        raise Refused(-1) from exc
    if ack[0] >> 4 != CONNACK or ack[3] != 0:
        w.close()
        raise Refused(ack[3])
    return r, w


async def connect_once(host: str, port: int, client_id: str, user: str, password: str | None,
                       bound: float = 10.0) -> int:
    """One device connect: TCP, CONNECT, CONNACK, DISCONNECT. The CONNACK's return code (-1:
    the broker closed the connection instead)."""
    r, w = await asyncio.wait_for(asyncio.open_connection(host, port), bound)
    try:
        w.write(connect_packet(client_id, user, password))
        ack = await asyncio.wait_for(r.readexactly(4), bound)
        code = ack[3] if ack[0] >> 4 == CONNACK else -1
        if code == 0:
            w.write(DISCONNECT_PACKET)
        return code
    except (asyncio.IncompleteReadError, ConnectionError):
        return -1
    finally:
        w.close()


class Subscriber:
    """One MQTT subscription whose PUBLISH packets are timed on arrival (QoS 1 ones acknowledged)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w = reader, writer
        self.latencies: list[float] = []   # of measured messages, seconds
        self.first = self.last = 0.0       # perf_counter of the first and last measured arrival
        self.warmup = 0                    # warm-up messages received
        self.closed: str | None = None     # why the reading ended early
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def received(self) -> int:
        return len(self.latencies)

    async def subscribe(self, topic: str, qos: int) -> None:
        self.w.write(subscribe_packet(1, topic, qos))
        head = await asyncio.wait_for(self.r.readexactly(5), 10)
        if head[0] >> 4 != SUBACK or head[4] > 1:
            raise Refused(head[4])
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        buf = bytearray()
        lat, unpack, now, clock = self.latencies, STAMP.unpack_from, time.time, time.perf_counter
        try:
            while True:
                data = await self.r.read(1 << 18)
                if not data:
                    self.closed = "the broker closed the subscriber's connection"
                    return
                buf += data
                found, used = packets(buf)
                t = now()
                acks = []
                for first, start, _end in found:
                    if first >> 4 != PUBLISH:
                        continue
                    at = start + 2 + ((buf[start] << 8) | buf[start + 1])
                    if first & 0x06:  # QoS 1: a packet id, acknowledged
                        acks.append(puback_packet((buf[at] << 8) | buf[at + 1]))
                        at += 2
                    sent, measured = unpack(buf, at)
                    if measured:
                        lat.append(t - sent)
                    else:
                        self.warmup += 1
                if acks:
                    self.w.write(b"".join(acks))
                if found:
                    if lat:
                        self.last = clock()
                        if not self.first:
                            self.first = self.last
                    self.changed.set()
                del buf[:used]
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.closed = f"the subscriber's connection failed: {type(exc).__name__}"
        finally:
            self.changed.set()

    async def wait_for(self, count: int, idle: float) -> None:
        """Until ``count`` measured messages arrived, or none arrived for ``idle`` seconds."""
        while self.received < count and self.closed is None:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), idle)
            except TimeoutError:
                return

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        try:
            self.w.write(DISCONNECT_PACKET)
        except (ConnectionError, RuntimeError):
            pass
        self.w.close()


class Publisher:
    """Writes PUBLISH packets on one connection, in batches; at QoS 1 at most ``inflight``
    unacknowledged (the PUBACKs are read and timed)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, topic: str,
                 size: int, qos: int, inflight: int = 256) -> None:
        self.r, self.w, self.qos = reader, writer, qos
        self.size = max(size, HEAD)
        self.prefix = publish_prefix(topic, self.size, qos)
        self.pad = b"x" * (self.size - HEAD)
        self.sent = 0
        self.acked = 0
        self.ack_latencies: list[float] = []
        self._window = asyncio.Semaphore(inflight) if qos else None
        self._sent_at: dict[int, tuple[float, bool]] = {}
        self._pid = 0
        self._drained = asyncio.Event()
        self._reader: asyncio.Task[None] | None = asyncio.create_task(self._acks()) if qos else None

    async def _acks(self) -> None:
        buf = bytearray()
        clock = time.perf_counter
        while True:
            data = await self.r.read(1 << 16)
            if not data:
                return
            buf += data
            found, used = packets(buf)
            t = clock()
            for first, start, _end in found:
                if first >> 4 == PUBACK:
                    sent = self._sent_at.pop((buf[start] << 8) | buf[start + 1], None)
                    if sent is not None:
                        if sent[1]:
                            self.ack_latencies.append(t - sent[0])
                        self.acked += 1
                        assert self._window is not None
                        self._window.release()
            if not self._sent_at:
                self._drained.set()
            del buf[:used]

    async def batch(self, n: int, measured: bool) -> None:
        """``n`` messages stamped now, in one write."""
        stamp = STAMP.pack(time.time(), 1 if measured else 0) + self.pad
        if not self.qos:
            self.w.write((self.prefix + stamp) * n)
        else:
            assert self._window is not None
            parts, t = [], time.perf_counter()
            for _ in range(n):
                await self._window.acquire()
                self._pid = self._pid % 65535 + 1
                self._sent_at[self._pid] = (t, measured)
                parts.append(self.prefix + struct.pack("!H", self._pid) + stamp)
            self.w.write(b"".join(parts))
        self.sent += n
        await self.w.drain()

    async def settle(self, bound: float) -> None:
        """Until every QoS 1 message was acknowledged (at most ``bound`` seconds)."""
        if self._sent_at:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), bound)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        try:
            self.w.write(DISCONNECT_PACKET)
        except (ConnectionError, RuntimeError):
            pass
        self.w.close()
