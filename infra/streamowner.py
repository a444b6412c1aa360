"""Whose stream is it: the events stream belongs to one store, and nobody else's is used.

The store has an identity (``infra.esstore``, created with its tables); the relay stamps it
on every message (``Smq-Store``). Before it resumes, the relay reads the stream's last
message and takes the stream only if it is empty, or its last message is stamped with this
store's identity (or with none: written by an older version) and is the very event this store
holds at that position (same aggregate id and version: a store restored from a backup keeps
its identity, and its new events take the positions of the ones it lost). Anything else (another store's stream: a re-initialised database, a restored
backup, a second environment on a shared NATS) is refused: the relay and the projector use
none of it, the log says so (ERROR, then reminders with back-off), ``/health`` fails, and
``smq stream adopt --reset`` is the operator's way out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from infra import metrics
from infra.bus import MSG_ID, POSITION, STORE
from infra.store import Store
from projections.envelope import decode

log = logging.getLogger("smq.stream")

EMPTY, OURS, UNSTAMPED, FOREIGN, AHEAD = "empty", "ours", "ours-unstamped", "foreign", "ahead"
USABLE = frozenset({EMPTY, OURS, UNSTAMPED})
ADVICE = ("run `smq stream adopt --reset` to start the stream over from this store, or give this "
          "store its own stream (SMQ_NATS_STREAM); `smq stream status` shows this again")


@dataclass(frozen=True)
class Finding:
    """What the stream's last message says about its owner, beside this store's own facts."""

    stream: str
    status: str
    ours: str
    head: int
    found_store: str | None = None
    found_position: int = 0

    @property
    def usable(self) -> bool:
        return self.status in USABLE

    def summary(self) -> str:
        """One line without identities (for /health, which anyone may read)."""
        if self.status == FOREIGN:
            return (f"stream {self.stream} belongs to another store (its last position "
                    f"{self.found_position}; this store's head {self.head})")
        if self.status == AHEAD and self.found_position > self.head:
            return (f"stream {self.stream} is ahead of this store (its last position "
                    f"{self.found_position} > this store's head {self.head})")
        if self.status == AHEAD:
            return (f"stream {self.stream} is ahead of this store: its event at position "
                    f"{self.found_position} is not this store's (a store restored from a backup?)")
        return f"stream {self.stream}: {self.status}"

    def describe(self) -> str:
        """The whole finding, identities included (for the log and the command line)."""
        return (f"{self.summary()}: stream's store {self.found_store or '(not stamped)'} at "
                f"position {self.found_position}, this store {self.ours} at head {self.head}")


async def inspect(js: JetStreamContext, stream: str, store: Store) -> Finding:
    """Read the stream's last message and judge it against this store."""
    ours = await store.identity()
    info = await js.stream_info(stream)
    if info.state.messages == 0 or info.state.last_seq == 0:
        return Finding(stream, EMPTY, ours, await store.max_position())
    try:
        msg = await js.get_msg(stream, info.state.last_seq)
    except NotFoundError:  # gone between the two reads (retention): judged on the next look
        return Finding(stream, EMPTY, ours, await store.max_position())
    headers = msg.headers or {}
    position = int(headers.get(POSITION) or headers.get(MSG_ID) or 0)
    found = headers.get(STORE)
    head = await store.max_position()  # read after the stream: our own stream is never ahead
    if found is not None and found != ours:
        return Finding(stream, FOREIGN, ours, head, found, position)
    if position > head:
        return Finding(stream, AHEAD, ours, head, found, position)
    # The last message must be the very event this store holds there: a store restored from a
    # backup has the same identity, and its new events take the positions of those it lost.
    try:
        env = decode(msg.data or b"")
        theirs: tuple[str, int] | None = (env.aggregate_id, env.version)
    except Exception:  # noqa: BLE001 - not even our format
        theirs = None
    if theirs is None or theirs != await store.event_at(position):
        return Finding(stream, AHEAD if found == ours else FOREIGN, ours, head, found, position)
    return Finding(stream, OURS if found == ours else UNSTAMPED, ours, head, found, position)


class StreamOwner:
    """Judges the stream for one process: a cached finding (``/health`` is polled), and a wait
    until the stream is usable that says loudly why it is not."""

    def __init__(self, js: JetStreamContext, stream: str, store: Store, ttl: float = 3.0,
                 poll: tuple[float, float] = (0.5, 5.0), remind: tuple[float, float] = (30.0, 600.0)) -> None:
        self.js, self.stream, self.store, self.ttl = js, stream, store, ttl
        self.poll, self.remind = poll, remind
        self._last: tuple[float, Finding] | None = None

    async def check(self, fresh: bool = False) -> Finding:
        now = time.monotonic()
        if not fresh and self._last is not None and now - self._last[0] < self.ttl:
            return self._last[1]
        finding = await inspect(self.js, self.stream, self.store)
        self._last = (now, finding)
        return finding

    async def wait_usable(self, stop: asyncio.Event, who: str) -> Finding | None:
        """The finding once the stream is usable (None when stopped first). While it is not, the
        first refusal is an ERROR, then a reminder after 30 s, 60 s, … (at most every 10 min);
        the bus failing to answer is a warning, and the wait goes on."""
        pause, reminder, next_reminder, refused = self.poll[0], self.remind[0], 0.0, False
        unread, next_unread = 0, 0.0  # failed reads in a row; when to say so again
        while not stop.is_set():
            try:
                finding = await self.check(fresh=True)
            except Exception as exc:  # noqa: BLE001 - the bus may be restarting: look again
                unread += 1
                now = time.monotonic()
                if now >= next_unread:  # once, then reminders with back-off (not every try)
                    log.warning("%s: reading the stream's last message failed %d time(s) (%s: %s);"
                                " retrying", who, unread, type(exc).__name__, exc)
                    next_unread = now + min(self.remind[0] * 2 ** max(unread.bit_length() - 1, 0),
                                            self.remind[1])
                finding = None
            if finding is not None and finding.usable:
                if refused:
                    log.warning("%s: %s; going on", who, finding.describe())
                if who == "relay":
                    metrics.stream_refused(False)
                if finding.status == UNSTAMPED and who == "relay":
                    log.warning("%s: the stream's last message (position %d) carries no store identity"
                                " (written by an older version); it is this store's event there, so"
                                " the stream is taken", who, finding.found_position)
                return finding
            if finding is not None:
                if who == "relay":
                    metrics.stream_refused(True)
                now = time.monotonic()
                if not refused or now >= next_reminder:
                    log.error("%s: %s; %s stream: %s", who, finding.describe(),
                              "publishing nothing to this" if who == "relay" else "reading nothing from this",
                              ADVICE)
                    if refused:
                        reminder = min(reminder * 2, self.remind[1])
                    next_reminder = now + reminder
                refused = True
            try:
                await asyncio.wait_for(stop.wait(), pause)
            except TimeoutError:
                pass
            pause = min(pause * 2, self.poll[1])
        return None


def owner_of(container: Any) -> StreamOwner:
    """The container's stream owner (one per process: its finding is cached)."""
    extras = container.extras
    if "stream_owner" not in extras:
        extras["stream_owner"] = StreamOwner(container.js, container.settings.stream, container.store)
    owner: StreamOwner = extras["stream_owner"]
    return owner


async def health(container: Any) -> str:
    """The ``stream`` check of ``/health``: pass, or fail naming why the stream is refused."""
    try:
        finding = await asyncio.wait_for(owner_of(container).check(), 2.0)
    except Exception as exc:  # noqa: BLE001 - any failure is a failed check
        return f"fail: {type(exc).__name__}"
    return "pass" if finding.usable else f"fail: {finding.summary()}; run `smq stream adopt --reset`"
