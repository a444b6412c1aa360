"""A lean caller of the hot Lua scripts (the message path's access snapshot, MQTT's connect,
read-your-writes' records, the failure limits): ``EVALSHA`` written in RESP on a few
connections of its own, many calls in flight on each (their replies come in the order the
calls were written), read by hiredis. redis-py spends several times the script's own cost on
each call (its pool, retries, packing and parsing layers: docs/performance.md).

A call answers what redis-py's script object answers, over the same protocol (RESP3 unless the
URL says ``protocol=2``): bytes, ints, lists, None for nil; an error inside a list as a
``ResponseError``. Failures raise redis-py's exceptions: a ``ResponseError`` (or its subclass)
for an error reply; ``ConnectionError`` for the calls in flight when a connection breaks (the
next call opens it again); ``TimeoutError`` when a connection has not answered within the
client's socket timeout (it is closed, failing the calls behind the one that waited).
``NOSCRIPT`` (Redis restarted, or its scripts flushed) is answered by ``EVAL``, once.

What it does not speak (TLS, a unix socket, Sentinel, a credential provider, decoded replies)
is left to redis-py: ``register_script`` then gives the client's own script object.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, Protocol, cast

import hiredis
from redis import exceptions as rx
from redis._parsers import BaseParser
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, ConnectionPool
from redis.utils import check_protocol_version

LINKS = 2  # connections of one caller (one process)
CLOSED = "Connection closed by server."  # redis-py's words
_MORE = object()  # hiredis: no whole reply yet


class ScriptCall(Protocol):
    def __call__(self, keys: Sequence[Any] | None = None,
                 args: Iterable[Any] | None = None) -> Awaitable[Any]: ...


class ScriptHost(Protocol):
    """What a Lua script is registered with: a redis-py client, or ``Scripts``."""

    def register_script(self, script: str) -> ScriptCall: ...


def bulk(value: Any) -> bytes:
    """One argument in RESP, encoded as redis-py's ``Encoder`` encodes it (text as UTF-8,
    numbers by ``repr``; anything else refused)."""
    if isinstance(value, str):
        raw = value.encode()
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        raw = repr(value).encode()
    else:
        raise rx.DataError(f"Invalid input of type: '{type(value).__name__}'. "
                           "Convert to a bytes, string, int or float first.")
    return b"$%d\r\n%b\r\n" % (len(raw), raw)


def command(*parts: Any) -> bytes:
    """A command in RESP."""
    return b"*%d\r\n%b" % (len(parts), b"".join(bulk(p) for p in parts))


class _Link(asyncio.Protocol):
    """One connection: requests written in order, their replies matched in the same order.
    What is asked within one turn of the loop is written at once."""

    def __init__(self, where: str, timeout: float | None) -> None:
        self.where, self.timeout = where, timeout or None
        self.loop = asyncio.get_running_loop()
        self.reader = hiredis.Reader(protocolError=rx.InvalidResponse, replyError=BaseParser.parse_error,
                                     notEnoughData=_MORE)
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()  # (reply, its deadline)
        self.out: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.broken = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(rx.ConnectionError, f"Error while reading from {self.where} : {exc}" if exc else CLOSED)

    def send(self, payload: bytes) -> asyncio.Future[Any]:
        reply: asyncio.Future[Any] = self.loop.create_future()
        if self.broken:
            reply.set_exception(rx.ConnectionError(CLOSED))
            return reply
        if not self.out:
            self.loop.call_soon(self._write)
        self.out.append(payload)
        deadline = self.loop.time() + self.timeout if self.timeout else 0.0
        self.waiting.append((reply, deadline))
        if self.timer is None and self.timeout:
            self.timer = self.loop.call_at(deadline, self._check)
        return reply

    def _write(self) -> None:
        out, self.out = self.out, []
        if out and not self.broken and self.transport is not None:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except rx.InvalidResponse as exc:
                self.fail(rx.ConnectionError, f"Protocol error from {self.where}: {exc}")
                return
            if reply is _MORE:
                return
            if isinstance(reply, hiredis.PushNotification):
                continue  # not a reply (none is asked for: nothing subscribes here)
            if not self.waiting:
                self.fail(rx.ConnectionError, f"A reply from {self.where} that nothing asked for")
                return
            waiter = self.waiting.popleft()[0]
            if waiter.done():  # its caller is gone (cancelled)
                continue
            if isinstance(reply, rx.RedisError):
                waiter.set_exception(reply)
            elif isinstance(reply, list) and reply and isinstance(reply[0], rx.ConnectionError):
                waiter.set_exception(reply[0])  # as redis-py's parser does
            else:
                waiter.set_result(reply)

    def _check(self) -> None:
        """The oldest call in flight has waited its time: the connection is stuck, closed."""
        self.timer = None
        if self.waiting and not self.broken:
            deadline = self.waiting[0][1]
            if deadline <= self.loop.time():
                self.fail(rx.TimeoutError, f"Timeout reading from {self.where}")
            else:
                self.timer = self.loop.call_at(deadline, self._check)

    def fail(self, kind: type[rx.RedisError], message: str) -> None:
        """Closed: every call in flight fails with ``kind``."""
        self.broken = True
        self.out = []
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.abort()
        waiting, self.waiting = self.waiting, deque()
        for waiter, _ in waiting:
            if not waiter.done():
                waiter.set_exception(kind(message))


def _lean(redis: Redis, conn: Any) -> bool:
    """Whether ``Scripts`` speaks what the client's URL asks for."""
    enc = conn.encoder
    return (type(redis.connection_pool) is ConnectionPool and type(conn) is Connection
            and conn.credential_provider is None and not (conn.username and not conn.password)
            and not enc.decode_responses and enc.encoding.lower().replace("-", "") == "utf8"
            and enc.encoding_errors == "strict")


def _hello(conn: Connection) -> list[bytes]:
    """What redis-py says on a new connection (``on_connect``): the protocol and credentials,
    the client's name, the database."""
    creds = ([conn.username, conn.password] if conn.username else [conn.password]) if conn.password else []
    said = []
    if check_protocol_version(conn.protocol, 3):
        auth = ["AUTH", *(["default", *creds] if len(creds) == 1 else creds)] if creds else []
        said.append(command("HELLO", 3, *auth))
    elif creds:
        said.append(command("AUTH", *creds))
    if conn.client_name:
        said.append(command("CLIENT", "SETNAME", conn.client_name))
    if conn.db:
        said.append(command("SELECT", conn.db))
    return said


class Scripts:
    """The hot scripts, called on connections of their own (``LINKS``, used in turn) with the
    client's host, port, credentials, database and socket timeouts; opened at the first call."""

    def __init__(self, redis: Redis, links: int = LINKS) -> None:
        self.redis = redis
        conn = redis.connection_pool.make_connection()  # never connected: its settings only
        self.lean = _lean(redis, conn)
        self.host, self.port = getattr(conn, "host", ""), getattr(conn, "port", 0)
        self.where = f"{self.host}:{self.port}"
        self.timeout, self.connect_timeout = conn.socket_timeout, conn.socket_connect_timeout
        self.hello = _hello(conn) if self.lean else []
        self._links: list[_Link | None] = [None] * links
        self._opening: list[asyncio.Task[_Link] | None] = [None] * links
        self._turn = 0

    def register_script(self, script: str) -> ScriptCall:
        if not self.lean:
            return self.redis.register_script(script)
        return LeanScript(self, script)

    async def call(self, payload: bytes) -> Any:
        """One command's reply, on the next connection in turn."""
        i = self._turn = (self._turn + 1) % len(self._links)
        link = self._links[i]
        if link is None or link.broken:
            link = await self._reopen(i)
        return await link.send(payload)

    async def _reopen(self, i: int) -> _Link:
        opening = self._opening[i]
        if opening is None:
            opening = self._opening[i] = asyncio.get_running_loop().create_task(self._open())
            opening.add_done_callback(lambda task: self._opened(i, task))
        try:
            return await asyncio.shield(opening)  # a caller cancelled does not cancel the others'
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if opening.cancelled() and task is not None and not task.cancelling():
                raise rx.ConnectionError("Connection closed.") from None  # by ``aclose``
            raise

    def _opened(self, i: int, task: asyncio.Task[_Link]) -> None:
        self._opening[i] = None
        if not task.cancelled() and task.exception() is None:
            self._links[i] = task.result()

    async def _open(self) -> _Link:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, link = await loop.create_connection(lambda: _Link(self.where, self.timeout),
                                                       self.host, self.port)
        except TimeoutError:
            raise rx.TimeoutError("Timeout connecting to server") from None
        except OSError as exc:
            raise rx.ConnectionError(f"Error {exc.errno} connecting to {self.where}. {exc.strerror}.") from exc
        try:
            for said in [link.send(c) for c in self.hello]:
                await said
        except BaseException:
            link.fail(rx.ConnectionError, CLOSED)
            raise
        return link

    async def aclose(self) -> None:
        """Close the connections (a later call opens them again)."""
        for opening in self._opening:
            if opening is not None:
                opening.cancel()
        links, self._links = self._links, [None] * len(self._links)
        for link in links:
            if link is not None:
                link.fail(rx.ConnectionError, "Connection closed.")
        await asyncio.sleep(0)  # the transports' connection_lost


class LeanScript:
    """A script called by ``EVALSHA`` (``EVAL`` when Redis does not know it) on ``Scripts``'
    connections; called as redis-py's script object is."""

    def __init__(self, caller: Scripts, script: str) -> None:
        self.caller, self.script = caller, script
        text = script.encode()
        self.sha = hashlib.sha1(text).hexdigest()
        self._evalsha = b"$7\r\nEVALSHA\r\n" + bulk(self.sha)
        self._eval = b"$4\r\nEVAL\r\n" + bulk(text)

    async def __call__(self, keys: Sequence[Any] | None = None, args: Iterable[Any] | None = None) -> Any:
        items = [*(keys or ()), *(args or ())]
        head = b"*%d\r\n" % (len(items) + 3)
        body = bulk(len(keys or ())) + b"".join([bulk(v) for v in items])
        try:
            return await self.caller.call(head + self._evalsha + body)
        except rx.NoScriptError:
            return await self.caller.call(head + self._eval + body)
