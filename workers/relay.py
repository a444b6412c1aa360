"""The relay: tails the store's notification log and publishes each event on JetStream once.

Each event is published with ``Nats-Msg-Id`` = its position and
``Nats-Expected-Last-Msg-Id`` = the previous event's position, so the stream
accepts events only in store order, never twice and never with a gap, however
often the relay is killed and restarted. Where to resume is read off the stream
itself (the position header of its last message), once the stream is known to be this
store's: every message carries the store's identity (``Smq-Store``), and a stream of another
store, or one ahead of this store, is refused (``infra.streamowner``).

On a NATS cluster the stream's leader may be lost (a node killed): publishing fails (no
responders while the others elect a new leader, or no acknowledgement from the dead one) and
the relay tries again after a short pause (growing to ``retry`` seconds), each try bounded by
``ack_wait``, so it publishes again within about ``retry`` of the new leader's election, never
waiting out a long bound. Whatever was acknowledged is on the stream; where to go on is read
off the stream again, and the message ids keep it exact (no duplicate, gap or reordering). A
failure is logged with its cause, once, then as reminders with back-off while it lasts, and the
recovery is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import psycopg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from infra import metrics
from infra.bus import EXPECTED_LAST_MSG_ID, MSG_ID, POSITION, STORE, cause
from infra.lease import Lease
from infra.store import Store
from infra.streamowner import StreamOwner
from projections.envelope import encode
from workers.relay_acks import Acks, header_block, header_value

log = logging.getLogger("smq.relay")


class Relay:
    """One active relay per event store."""

    def __init__(self, store: Store, js: JetStreamContext, stream: str, root: str,
                 pool: AsyncConnectionPool | None = None, batch: int = 500, idle: float = 0.02,
                 ack_wait: float = 2.0, lease: Lease | None = None, standby_poll: float = 1.0,
                 listen: tuple[str, str] | None = None, idle_listening: float = 0.25,
                 owner: StreamOwner | None = None, retry: float = 0.25) -> None:
        self.store, self.js, self.stream, self.root = store, js, stream, root
        self.acks = Acks(js._nc)  # the pipelined publishes' acknowledgements (workers.relay_acks)
        self.owner = owner or StreamOwner(js, stream, store, poll=(retry, 5.0))
        self.store_id: str | None = None
        self.pool, self.batch, self.idle, self.ack_wait = pool, batch, idle, ack_wait
        self.lease, self.standby_poll = lease, standby_poll
        self.position = 0
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        # Woken at once by a commit in this process, and by the store's NOTIFY on
        # ``listen`` = (database URL, channel) for commits made by other processes.
        store.on_commit(lambda _pos: self._wake.set())
        self.listen = listen
        # While the LISTEN connection is up, every commit wakes the relay and polling is only a
        # safety net (every ``idle_listening`` seconds: it also bounds the delay where LISTEN
        # looks up but delivers nothing, e.g. behind a transaction-mode pooler); fast polling
        # was most of an idle server's CPU (docs/performance.md, "Measurements behind the code").
        self.idle_listening = idle_listening
        self.listening = False
        self.failures = 0  # failures in a row (publishing, or reading where to resume)
        self.retry = retry  # the longest pause between two tries while failing
        self.failing_since = 0.0  # monotonic time of the first failure of the current run
        self.recovered_at = 0.0  # monotonic time of the last recovery (publishing again)
        self._next_reminder, self._reminder = 0.0, 5.0

    async def published_position(self) -> int:
        """Position of the last event on the stream (0 for an empty stream)."""
        info = await self.js.stream_info(self.stream)
        if info.state.last_seq == 0:
            return 0
        try:
            msg = await self.js.get_msg(self.stream, info.state.last_seq)
        except NotFoundError:
            return await self._checkpoint()
        headers = msg.headers or {}
        return int(headers.get(POSITION) or headers.get(MSG_ID) or 0)

    async def _checkpoint(self) -> int:
        if self.pool is None:
            return 0
        async with self.pool.connection() as conn:
            row = await (await conn.execute("select position from relay_checkpoint where id=1")).fetchone()
        return int(row[0]) if row else 0

    async def _save_checkpoint(self) -> None:
        if self.pool is None:
            return
        async with self.pool.connection() as conn:
            await conn.execute(
                "insert into relay_checkpoint values (1, %s) on conflict (id) do update set position=excluded.position"
                " where relay_checkpoint.position < excluded.position", (self.position,))

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def _standby(self) -> bool:
        """Wait until this relay holds the lease (True), or is stopped (False)."""
        while not self._stop.is_set():
            if self.lease is None or await self.lease.acquire():
                return True
            try:
                await asyncio.wait_for(self._stop.wait(), self.standby_poll)
            except TimeoutError:
                pass
        return False

    async def run(self) -> None:
        """Publish while holding the lease; stand by while another relay holds it."""
        listener = asyncio.create_task(self._listen(), name="relay-listen") if self.listen else None
        try:
            while await self._standby():
                await self._publish_while_held()
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            if self.lease is not None:
                await self.lease.release()

    async def _listen(self) -> None:
        """Wake the relay on each NOTIFY of the store (a commit by any process); without it,
        the relay still polls every ``idle`` seconds."""
        while not self._stop.is_set() and self.listen is not None:
            url, channel = self.listen
            try:
                # TCP keepalives: a connection that died silently is noticed within ~30 s.
                async with await psycopg.AsyncConnection.connect(
                        url, autocommit=True, keepalives=1, keepalives_idle=10, keepalives_interval=5,
                        keepalives_count=3) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.listening = True
                    self._wake.set()  # read once more: a commit made before the LISTEN
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - polling goes on meanwhile
                # At once, not in the finally below (it comes after the pause): the relay
                # waiting on the long poll goes back to the short one now.
                self.listening = False
                self._wake.set()
                log.warning("relay: listening for commits failed (%s); polling meanwhile", exc)
                await asyncio.sleep(1.0)
            finally:
                self.listening = False
                self._wake.set()  # a relay waiting on the long poll goes back to the short one

    def _failed(self, what: str, exc: BaseException) -> None:
        """Count a failure and say it with its cause: the first at once (WARNING), then a
        reminder (ERROR, with the traceback) after 5 s, 10 s, … (at most every minute)."""
        now = time.monotonic()
        self.failures += 1
        metrics.relay_failures(self.failures)
        if self.failures == 1:
            self.failing_since, self._reminder = now, 5.0
            self._next_reminder = now + self._reminder
            log.warning("relay: %s failed (%s); resuming from the stream", what, cause(exc))
        elif now >= self._next_reminder:
            log.error("relay: failing for %.1fs (%d tries; this time %s: %s); retrying",
                      now - self.failing_since, self.failures, what, cause(exc), exc_info=exc)
            self._reminder = min(self._reminder * 2, 60.0)
            self._next_reminder = now + self._reminder

    def _recovered(self) -> None:
        if self.failures:
            self.recovered_at = time.monotonic()
            log.warning("relay: publishing again after %.2fs (%d failed tries)",
                        self.recovered_at - self.failing_since, self.failures)
            self.failures = 0
            metrics.relay_failures(0)

    def _pause(self) -> float:
        """The pause before the next try: short (a leader election is over in seconds, and a
        refused publish costs one round trip), growing to ``retry``."""
        return min(0.02 * 2 ** max(self.failures - 1, 0), self.retry)

    async def _resume(self, delay: float = 0.0) -> bool:
        """Take up the position of the stream's last message once the stream is this store's
        (waiting, loudly, while it is not), retrying (after a short pause) while the bus cannot
        tell it; False when stopped meanwhile."""
        while not self._stop.is_set():
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                if self._stop.is_set():
                    return False
            try:
                await self.js.stream_info(self.stream)  # the stream answers again (has a leader)
                if await self.owner.wait_usable(self._stop, "relay") is None:
                    return False
                self.position = await self.published_position()
                return True
            except Exception as exc:  # noqa: BLE001 - the bus may be restarting: try again
                self._failed("reading the stream's last position", exc)
                delay = self._pause()
        return False

    async def _publish_while_held(self) -> None:
        if not await self._resume():
            return
        log.info("relay resumes after position %d", self.position)
        while not self._stop.is_set():
            if self.lease is not None and not self.lease.held:
                log.warning("relay: lease lost; standing by")
                return
            # Cleared before the read: a wake-up (or stop) during it is not lost.
            self._wake.clear()
            try:
                sent = await self.publish_once()
            except Exception as exc:  # noqa: BLE001 - any failure (a stream without a leader answers
                # NoStreamResponseError, PostgreSQL OperationalError): the relay must not die
                self._failed("publish", exc)
                if not await self._resume(self._pause()):
                    return
                continue
            self._recovered()
            if sent < self.batch:
                try:
                    idle = self.idle_listening if self.listening else self.idle
                    await asyncio.wait_for(self._wake.wait(), idle if sent == 0 else 0)
                except TimeoutError:
                    pass

    async def _check_repeat(self, position: int, ack: Any) -> None:
        """A duplicate acknowledgement: the stream already held a message with this position's
        id. This store's (a repeat): nothing to do. Another store's (its relay published on this
        stream between our look at it and our publish, JetStream dropping ours as a repeat):
        refused, or the events that follow would be appended after another store's."""
        if not getattr(ack, "duplicate", False):
            return
        msg = await self.js.get_msg(self.stream, ack.seq)
        found = (msg.headers or {}).get(STORE)
        if found is not None and found != self.store_id:
            raise RuntimeError(f"stream {self.stream} holds position {position} of another store "
                               f"({found}), published meanwhile: this store's event was dropped as a repeat")

    async def publish_once(self) -> int:
        """Publish the next batch; returns how many events it carried.

        The first event goes out with a plain publish, whose refusal (a wrong last
        message id: another relay got ahead) raises at once; the rest are pipelined.
        nats-py never resolves a pipelined publish that the server refuses (hence
        ``workers.relay_acks``), and a leader lost mid-batch acknowledges nothing, so the
        acknowledgements are awaited within a bound (``ack_wait``, as the first publish: short,
        so that a leader lost mid-batch costs little; a bound passed only means trying again).
        """
        if self.store_id is None:
            self.store_id = await self.store.identity()
        batch = await self.store.read(self.position, self.batch)
        if not batch:
            return 0
        previous = self.position
        tokens = []
        store, first = header_value(self.store_id), batch[0]
        headers = {MSG_ID: str(first.position), POSITION: str(first.position), STORE: self.store_id}
        if previous:
            headers[EXPECTED_LAST_MSG_ID] = str(previous)
        try:
            await self._check_repeat(first.position, await self.js.publish(
                first.subject(self.root), encode(first), headers=headers, timeout=self.ack_wait))
            previous = first.position
            for env in batch[1:]:  # the same headers, written by relay_acks
                tokens.append(await self.acks.publish(env.subject(self.root), encode(env),
                                                      header_block(env.position, store, previous)))
                previous = env.position
            results = await self.acks.results(tokens, self.ack_wait)
        except BaseException:
            self.acks.forget()  # the batch is tried again from the stream's last message
            raise
        self.position = batch[0].position
        for env, result in zip(batch[1:], results, strict=True):
            if isinstance(result, Exception):
                raise result
            await self._check_repeat(env.position, result)
            self.position = env.position
        await self._save_checkpoint()
        metrics.relay_position(self.position)
        return len(batch)
